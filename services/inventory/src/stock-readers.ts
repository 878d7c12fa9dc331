import { authorizeAnyOf, authorizeMemberOf, authorizeOneOf, type Authorizer, type TrustDomain } from '@shop/auth';

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
  return authorizeAnyOf(members, authorizeOneOf(...partnerStockReaders));
}
