/**
 * A private PKI for TLS tests, made by the openssl CLI in a temporary folder: a CA, and certificates it signs
 * for servers (127.0.0.1, localhost) and clients, with the validity period a test asks for (an expired one too).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Issued {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

export interface TestCa {
  name: string;
  /** The CA certificate (PEM) and its file. */
  cert: string;
  certFile: string;
  /**
   * issue signs a certificate. `names`: subjectAltNames ("IP:127.0.0.1", "DNS:localhost"); `from`/`to`:
   * openssl dates (YYYYMMDDHHMMSSZ); `client`: a client certificate (extendedKeyUsage clientAuth).
   */
  issue(commonName: string, options?: { names?: string[]; from?: string; to?: string; client?: boolean }): Issued;
}

export interface TestPki {
  dir: string;
  createCa(name: string): TestCa;
  remove(): void;
}

const openssl = (args: string[], cwd: string) =>
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'ker-pki-'));
  let serial = 0;
  return {
    dir,
    remove: () => rmSync(dir, { recursive: true, force: true }),
    createCa(name) {
      const base = join(dir, name);
      openssl(
        [
          'req',
          '-x509',
          '-new',
          ...EC_KEY,
          '-keyout',
          `${base}.key`,
          '-out',
          `${base}.crt`,
          '-days',
          '2',
          '-subj',
          `/CN=${name}`,
          '-addext',
          'basicConstraints=critical,CA:TRUE',
          '-addext',
          'keyUsage=critical,keyCertSign,cRLSign',
        ],
        dir,
      );
      writeFileSync(`${base}.index`, '');
      writeFileSync(`${base}.srl`, '01\n');
      writeFileSync(
        `${base}.cnf`,
        [
          '[ca]',
          'default_ca = this',
          '[this]',
          `database = ${base}.index`,
          `serial = ${base}.srl`,
          `new_certs_dir = ${dir}`,
          'default_md = sha256',
          'policy = any',
          'unique_subject = no',
          'copy_extensions = none',
          '[any]',
          'commonName = supplied',
          '',
        ].join('\n'),
      );
      return {
        name,
        cert: readFileSync(`${base}.crt`, 'utf8'),
        certFile: `${base}.crt`,
        issue(commonName, options = {}) {
          const out = join(dir, `${name}-${commonName}-${++serial}`);
          openssl(
            ['req', '-new', ...EC_KEY, '-keyout', `${out}.key`, '-out', `${out}.csr`, '-subj', `/CN=${commonName}`],
            dir,
          );
          const names = options.names ?? ['IP:127.0.0.1', 'DNS:localhost'];
          writeFileSync(
            `${out}.ext`,
            [
              options.client ? 'extendedKeyUsage = clientAuth' : 'extendedKeyUsage = serverAuth',
              'basicConstraints = CA:FALSE',
              ...(options.client ? [] : [`subjectAltName = ${names.join(',')}`]),
              '',
            ].join('\n'),
          );
          const yesterday = new Date(Date.now() - 86_400_000).toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
          const tomorrow = new Date(Date.now() + 86_400_000).toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
          openssl(
            [
              'ca',
              '-batch',
              '-config',
              `${base}.cnf`,
              '-cert',
              `${base}.crt`,
              '-keyfile',
              `${base}.key`,
              '-in',
              `${out}.csr`,
              '-out',
              `${out}.crt`,
              '-notext',
              '-startdate',
              options.from ?? yesterday,
              '-enddate',
              options.to ?? tomorrow,
              '-extfile',
              `${out}.ext`,
            ],
            dir,
          );
          return {
            cert: readFileSync(`${out}.crt`, 'utf8'),
            key: readFileSync(`${out}.key`, 'utf8'),
            certFile: `${out}.crt`,
            keyFile: `${out}.key`,
          };
        },
      };
    },
  };
}
