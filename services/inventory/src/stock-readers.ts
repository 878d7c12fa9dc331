import {
  adaptMatcher,
  authorizeMemberOf,
  authorizeOneOf,
  type Authorizer,
  type SpiffeId,
  type TrustDomain,
} from '@shop/auth';

function allows(authorizer: Authorizer, id: SpiffeId): boolean {
  try {
    // Both rules below look at the ID only, never at the chain.
    authorizer(id, []);
    return true;
  } catch {
    return false;
  }
}

/**
 * authorizeStockReaders is who may read stock (HTTP `GET /api/stock/:productId`,
 * gRPC `GetStock`): any workload of `trustDomain`, and also exactly the
 * `partnerStockReaders` (SPIFFE IDs of federated trust domains). With no
 * partners it is `authorizeMemberOf(trustDomain)`, the rule of every other read.
 */
export function authorizeStockReaders(
  trustDomain: TrustDomain | string,
  partnerStockReaders: readonly string[] = [],
): Authorizer {
  const members = authorizeMemberOf(trustDomain);
  if (partnerStockReaders.length === 0) return members;
  const partners = authorizeOneOf(...partnerStockReaders);
  return adaptMatcher((id) => allows(members, id) || allows(partners, id), `${members.rule} or ${partners.rule}`);
}
