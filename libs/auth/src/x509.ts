// @shop/auth/x509: X.509-SVIDs, X.509 bundles and their verification, with
// the SPIFFE ID types, the errors they throw and the certificate and PEM
// helpers underneath — everything of the root entry that reads certificates,
// without the identity sources, the Workload API and the adapters (and their
// gRPC, jose and undici), so tools that only read certificates (the
// spiffe-auth CLI) start fast. The classes are the root entry's own.
export { AuthError, errorHints, isAuthError, type AuthErrorCode } from './errors.ts';
export { TrustDomain } from './spiffeid/trust-domain.ts';
export { SpiffeId } from './spiffeid/spiffe-id.ts';
export { X509Svid, spiffeIdOfLeaf, checkSigningCertificate } from './svid/x509-svid.ts';
export { X509Bundle, X509BundleSet, type X509BundleSource } from './bundle/x509-bundle.ts';
export { verifyX509Svid, type PeerRole, type VerifiedPeer, type VerifyX509SvidOptions } from './verify/x509-verify.ts';
export { parseCertificate, type ParsedCertificate, type KeyUsageBits } from './x509/certificate.ts';
export { decodePem, encodePem, pemBlocksOfType, splitDerSequence, type PemBlock } from './x509/pem.ts';
