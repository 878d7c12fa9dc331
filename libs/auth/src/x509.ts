// @shop/auth/x509: the certificate and PEM helpers the library verifies with,
// for tools that read certificates the same way (the spiffe-auth CLI).
export { parseCertificate, type ParsedCertificate, type KeyUsageBits } from './x509/certificate.ts';
export { decodePem, encodePem, pemBlocksOfType, splitDerSequence, type PemBlock } from './x509/pem.ts';
export { spiffeIdOfLeaf, checkSigningCertificate } from './svid/x509-svid.ts';
