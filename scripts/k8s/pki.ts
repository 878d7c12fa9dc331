// The cluster's PKI: one CA, the API server's serving certificate, client
// certificates for each component and the admin, and the service-account
// signing key pair. Made with the openssl command (Debian's openssl): Node's
// crypto makes keys but cannot issue X.509 certificates, and the project has
// no certificate library outside its tests.
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** ClientCert names one client certificate: file stem, common name, organisations. */
export interface ClientCert {
  name: string;
  cn: string;
  orgs: string[];
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await run('openssl', args, { cwd, maxBuffer: 1 << 20 });
}

async function newKey(dir: string, name: string): Promise<void> {
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`], dir);
}

async function sign(dir: string, name: string, subject: string, ext: string[]): Promise<void> {
  await newKey(dir, name);
  await openssl(['req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`], dir);
  await writeFile(join(dir, `${name}.ext`), ext.join('\n') + '\n');
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-set_serial',
      `0x${Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('hex')}`,
      '-days',
      '365',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    ],
    dir,
  );
  await rm(join(dir, `${name}.csr`));
  await rm(join(dir, `${name}.ext`));
}

/** Pki is where makePki wrote each file. */
export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  apiserverCert: string;
  apiserverKey: string;
  saKey: string;
  saPub: string;
  client: (name: string) => { cert: string; key: string };
}

/** makePki writes a fresh PKI into dir for an API server reachable at the given IPs and names. */
export async function makePki(
  dir: string,
  opts: { ips: string[]; dnsNames: string[]; clients: ClientCert[] },
): Promise<Pki> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await newKey(dir, 'ca');
  await openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      'ca.key',
      '-subj',
      '/CN=spiffe-shop-k8s-ca',
      '-days',
      '3650',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
      '-out',
      'ca.crt',
    ],
    dir,
  );
  const san = [...opts.dnsNames.map((d) => `DNS:${d}`), ...opts.ips.map((ip) => `IP:${ip}`)].join(',');
  await sign(dir, 'apiserver', '/CN=kube-apiserver', [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    `subjectAltName=${san}`,
  ]);
  for (const c of opts.clients) {
    const subject = [...c.orgs.map((o) => `/O=${o}`), `/CN=${c.cn}`].join('');
    await sign(dir, c.name, subject, [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=clientAuth',
    ]);
  }
  // The service-account token signing pair: the API server signs projected
  // tokens with it and publishes the public half for TokenReview and OIDC.
  await openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key'], dir);
  await openssl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    apiserverCert: join(dir, 'apiserver.crt'),
    apiserverKey: join(dir, 'apiserver.key'),
    saKey: join(dir, 'sa.key'),
    saPub: join(dir, 'sa.pub'),
    client: (name) => ({ cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) }),
  };
}

/** writeKubeconfig writes a kubeconfig with the CA and a client certificate embedded. */
export async function writeKubeconfig(
  path: string,
  opts: { server: string; caCert: string; cert: string; key: string; user: string },
): Promise<void> {
  const b64 = async (p: string): Promise<string> => (await readFile(p)).toString('base64');
  // JSON is YAML, and kubectl reads either.
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name: 'spiffe-shop', cluster: { server: opts.server, 'certificate-authority-data': await b64(opts.caCert) } },
    ],
    users: [
      {
        name: opts.user,
        user: { 'client-certificate-data': await b64(opts.cert), 'client-key-data': await b64(opts.key) },
      },
    ],
    contexts: [{ name: 'spiffe-shop', context: { cluster: 'spiffe-shop', user: opts.user } }],
    'current-context': 'spiffe-shop',
  };
  await writeFile(path, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
}
