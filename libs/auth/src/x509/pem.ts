import { AuthError } from '../errors.ts';

/** PemBlock is one decoded `-----BEGIN <type>-----` block. */
export interface PemBlock {
  type: string;
  der: Buffer;
}

const PEM_RE = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

/** decodePem returns every PEM block in `text`, in order. Text outside blocks is ignored, as openssl does. */
export function decodePem(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const m of text.matchAll(PEM_RE)) {
    const body = (m[2] ?? '').replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) {
      throw new AuthError('AUTH_ERR_PEM_INVALID', `PEM block "${m[1] ?? ''}" has a body that is not valid base64`);
    }
    blocks.push({ type: m[1] ?? '', der: Buffer.from(body, 'base64') });
  }
  return blocks;
}

/** pemBlocksOfType returns the DER of every block of `type`, failing with a clear error naming `what` if none. */
export function pemBlocksOfType(text: string, type: string, what: string): Buffer[] {
  const blocks = decodePem(text);
  const matching = blocks.filter((b) => b.type === type).map((b) => b.der);
  if (matching.length === 0) {
    const found = blocks.length === 0 ? 'no PEM blocks' : `blocks of type ${blocks.map((b) => b.type).join(', ')}`;
    throw new AuthError('AUTH_ERR_PEM_INVALID', `${what}: expected a PEM "${type}" block, found ${found}`);
  }
  return matching;
}

/** encodePem encodes DER as one PEM block of `type`. */
export function encodePem(type: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${type}-----\n${lines.join('\n')}\n-----END ${type}-----\n`;
}

/**
 * splitDerSequence splits concatenated DER values (as the Workload API sends
 * certificate chains and bundles) into one buffer each. Written by hand
 * because it is a dozen lines of DER length decoding and no parser we use
 * exposes "read one element and tell me where it ended".
 */
export function splitDerSequence(data: Uint8Array, what: string): Buffer[] {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out: Buffer[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf[off] !== 0x30 || off + 2 > buf.length) {
      throw new AuthError('AUTH_ERR_CERT_INVALID', `${what}: expected a DER SEQUENCE at byte ${off}`);
    }
    let len = buf[off + 1] ?? 0;
    let header = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4 || off + 2 + n > buf.length) {
        throw new AuthError('AUTH_ERR_CERT_INVALID', `${what}: invalid DER length at byte ${off}`);
      }
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + (buf[off + 2 + i] ?? 0);
      header += n;
    }
    const end = off + header + len;
    if (end > buf.length) throw new AuthError('AUTH_ERR_CERT_INVALID', `${what}: DER data is truncated at byte ${off}`);
    out.push(buf.subarray(off, end));
    off = end;
  }
  return out;
}
