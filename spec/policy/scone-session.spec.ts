/**
 * sconeSession(): the session enclavify emits for a converted SCONE image, from the image config
 * and the sconify-style options, validated against the schema.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { parseVolumeSpec } from '../../lib/policy/scone-volumes.js';
import { sconeConfigId, sconeNamespaceSession, sconeSession, sessionToYaml, type SconeSessionOptions } from '../../lib/policy/scone-session.js';
import { validateSconeSession } from '../../lib/policy/validate.js';
import { repoRoot } from '../helpers/tools.js';

const MRE = 'E2F7CB1C13FA16D2A48F1727EBF1C20AC8185E72E14F647E876072E1F006377D';
const KEY = '4ee511ed8963f1b8034f33cfbb57f8800a6c2f17e64e4ed89122fc25e2ee50b1';
const TAG = '849565fe4a941e2be3bcc3c9d46f40c1';

const config = {
  Entrypoint: ['python3'],
  Cmd: ['/code/app.py', '--port', '8080'],
  Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'LANG=C.UTF-8', 'GREETING=a=b'],
  WorkingDir: '/code',
};

function opts(extra: Partial<SconeSessionOptions> = {}): SconeSessionOptions {
  return { namespace: 'my-ns', name: 'python-session', mrenclaves: [MRE], config, ...extra };
}

test('the session carries command, env and pwd from the image config and validates', () => {
  const s = sconeSession(opts());
  assert.deepEqual(validateSconeSession(s), []);
  assert.equal(s.name, 'my-ns/python-session');
  assert.equal(s.version, '0.3.10');
  assert.deepEqual(s.access_policy, { read: ['CREATOR'], update: ['CREATOR'] });
  const svc = s.services![0];
  assert.equal(svc.name, 'service');
  assert.equal(svc.image_name, 'service_image');
  assert.deepEqual(svc.mrenclaves, [MRE.toLowerCase()]);
  assert.equal(svc.command, 'python3 /code/app.py --port 8080');
  assert.deepEqual(svc.environment, { SCONE_MODE: 'hw', PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8', GREETING: 'a=b' });
  assert.equal(svc.pwd, '/code');
  assert.deepEqual(s.images, [{ name: 'service_image' }]);
  assert.equal(s.security, undefined);
  assert.equal(sconeConfigId(s), 'my-ns/python-session/service');
});

test('reproduces the policy sconify generated in the SCONE docs (sconify_hw_k8s)', () => {
  const doc = parse(readFileSync(path.join(repoRoot, 'spec/policy/fixtures/sconify-hw-k8s-python-session.yaml'), 'utf8'));
  const s = sconeSession({
    namespace: 'ns-8991241572316',
    name: 'python-session',
    serviceName: 'python-service',
    version: '0.3',
    mrenclaves: ['e2f7cb1c13fa16d2a48f1727ebf1c20ac8185e72e14f647e876072e1f006377d'],
    config: { Cmd: ['python3', '/code/app.py'], Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8'] },
    env: ['SCONE_LOG=7'],
    fspf: { path: '/fspf/fs.fspf', key: KEY, tag: TAG },
    volumes: ['V1:/V1'],
    allowDebugMode: true,
    allowTcbVulnerabilities: true,
  });
  assert.equal(s.name, doc.name);
  assert.equal(s.version, doc.version);
  assert.deepEqual(s.access_policy, doc.access_policy);
  assert.deepEqual(s.services, doc.services);
  assert.deepEqual(s.volumes, doc.volumes);
  assert.deepEqual(s.images, doc.images);
  assert.equal(s.security!.attestation!.ignore_advisories, '*');
  // Ours also tolerates aepic-leak, a newer category than the docs' example.
  assert.deepEqual(s.security!.attestation!.tolerate!.filter((t) => t !== 'aepic-leak'), doc.security.attestation.tolerate);
});

test('arguments with whitespace or quotes keep their value: the command becomes a list', () => {
  const s = sconeSession(opts({ config: { Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo "hi there" && sleep 1'] } }));
  assert.deepEqual(s.services![0].command, ['/bin/sh', '-c', 'echo "hi there" && sleep 1']);
  const e = sconeSession(opts({ config: { Cmd: ['app', ''] } }));
  assert.deepEqual(e.services![0].command, ['app', '']);
});

test('--command overrides Entrypoint + Cmd, as a string or a list', () => {
  assert.equal(sconeSession(opts({ command: 'python3 /code/other.py -v 20' })).services![0].command, 'python3 /code/other.py -v 20');
  assert.deepEqual(sconeSession(opts({ command: ['mysql', '-e', 'show databases;'] })).services![0].command, ['mysql', '-e', 'show databases;']);
  assert.throws(() => sconeSession(opts({ command: '  ' })), /--command/);
  assert.throws(() => sconeSession(opts({ config: { Env: [] } })), /neither Entrypoint nor Cmd; pass --command/);
});

test('--env is applied last; disableCopyEnv drops the image Env; sconeMode controls SCONE_MODE', () => {
  const s = sconeSession(opts({ env: ['LANG=de_DE.UTF-8', 'SCONE_LOG=7', 'EMPTY='] }));
  assert.equal(s.services![0].environment!.LANG, 'de_DE.UTF-8');
  assert.equal(s.services![0].environment!.SCONE_LOG, '7');
  assert.equal(s.services![0].environment!.EMPTY, '');
  const d = sconeSession(opts({ disableCopyEnv: true, env: ['A=1'] }));
  assert.deepEqual(d.services![0].environment, { SCONE_MODE: 'hw', A: '1' });
  const m = sconeSession(opts({ sconeMode: null, config: { ...config, Env: ['SCONE_MODE=sim'] } }));
  assert.equal(m.services![0].environment!.SCONE_MODE, 'sim');
  const n = sconeSession(opts({ config: { ...config, Env: ['SCONE_MODE=sim'] } }));
  assert.equal(n.services![0].environment!.SCONE_MODE, 'hw', 'the option wins over the native image');
});

test('a malformed --env is rejected without echoing the value', () => {
  assert.throws(() => sconeSession(opts({ env: ['hunter2-secret-no-equals'] })), (e: Error) => /--env #1: expected KEY=VALUE/.test(e.message) && !e.message.includes('hunter2'));
  assert.throws(() => sconeSession(opts({ env: ['=x'] })), /--env #1/);
  assert.throws(() => sconeSession(opts({ config: { ...config, Env: ['NOVALUE'] } })), /config Env\[0\]: expected KEY=VALUE/);
});

test('pwd defaults to / and must be absolute', () => {
  assert.equal(sconeSession(opts({ config: { Cmd: ['app'] } })).services![0].pwd, '/');
  assert.equal(sconeSession(opts({ pwd: '/srv' })).services![0].pwd, '/srv');
  assert.throws(() => sconeSession(opts({ config: { Cmd: ['app'], WorkingDir: 'code' } })), /WorkingDir "code": must be an absolute path/);
});

test('names are checked and name the option', () => {
  assert.throws(() => sconeSession(opts({ namespace: 'my ns' })), /namespace segment "my ns"/);
  assert.throws(() => sconeSession(opts({ namespace: 'org/../x' })), /namespace segment "\.\."/);
  assert.throws(() => sconeSession(opts({ name: 'a/b' })), /^EnclavifyError: name "a\/b"/);
  assert.throws(() => sconeSession(opts({ serviceName: 'svc!' })), /serviceName "svc!"/);
  assert.throws(() => sconeSession(opts({ version: '0.2' })), /version "0\.2"/);
  assert.equal(sconeSession(opts({ namespace: 'org/team' })).name, 'org/team/python-session');
});

test('MRENCLAVEs are checked, lower-cased and deduplicated', () => {
  assert.deepEqual(sconeSession(opts({ mrenclaves: [MRE, MRE.toLowerCase()] })).services![0].mrenclaves, [MRE.toLowerCase()]);
  assert.throws(() => sconeSession(opts({ mrenclaves: [MRE.slice(1)] })), /mrenclaves\[0\]: expected 32 bytes/);
  assert.throws(() => sconeSession(opts({ mrenclaves: ['x'.repeat(64)] })), /mrenclaves\[0\]/);
  assert.throws(() => sconeSession(opts({ mrenclaves: [] })), /at least one MRENCLAVE/);
  const none = sconeSession(opts({ mrenclaves: [], attestationMode: 'none' }));
  assert.equal(none.services![0].mrenclaves, undefined);
  assert.equal(none.security!.attestation!.mode, 'none');
});

test('FSPF key and tag go in as lower-case hex; a bad key is refused without echoing it', () => {
  const raw = new Uint8Array(32).map((_, i) => i);
  const s = sconeSession(opts({ fspf: { path: '/fspf/fs.fspf', key: raw, tag: TAG.toUpperCase(), updatePolicy: 'no_rollback_protection' } }));
  const svc = s.services![0];
  assert.equal(svc.fspf_key, Buffer.from(raw).toString('hex'));
  assert.equal(svc.fspf_tag, TAG);
  assert.equal(svc.fspf_update_policy, 'no_rollback_protection');
  const short = KEY.slice(0, 60);
  assert.throws(() => sconeSession(opts({ fspf: { path: '/f', key: short, tag: TAG } })), (e: Error) => /fspf\.key: expected 32 bytes/.test(e.message) && !e.message.includes(short));
  assert.throws(() => sconeSession(opts({ fspf: { path: '/f', key: KEY, tag: TAG.slice(2) } })), /fspf\.tag: expected 16 bytes/);
  assert.throws(() => sconeSession(opts({ fspf: { path: 'f', key: KEY, tag: TAG } })), /fspf\.path/);
});

test('parseVolumeSpec: plain, import and export forms', () => {
  assert.deepEqual(parseVolumeSpec('data:/data'), { name: 'data', path: '/data', exportTo: [] });
  assert.deepEqual(parseVolumeSpec('in:/in:producer-session:'), { name: 'in', path: '/in', importFrom: 'producer-session', exportTo: [] });
  assert.deepEqual(parseVolumeSpec('out:/out::consumer-1:consumer-2'), { name: 'out', path: '/out', exportTo: ['consumer-1', 'consumer-2'] });
  assert.deepEqual(parseVolumeSpec('v:/a//b/'), { name: 'v', path: '/a/b', exportTo: [] });
  assert.deepEqual(parseVolumeSpec('v:/v:org/producer'), { name: 'v', path: '/v', importFrom: 'org/producer', exportTo: [] });
});

for (const [spec, why] of [
  ['data', /mount path "" must be absolute/],
  [':/data', /volume name ""/],
  ['bad name:/data', /volume name "bad name"/],
  ['data:data', /must be absolute/],
  ['data:/', /must not be the root directory/],
  ['data:/a/../etc', /\. or \.\. segments/],
  ['in:/in:producer:consumer', /imported from another session cannot be exported/],
  ['out:/out::bad session', /TO_SESSION "bad session"/],
  ['out:/out::c:c', /listed twice/],
  ['in:/in:bad session', /FROM_SESSION "bad session"/],
] as [string, RegExp][]) {
  test(`parseVolumeSpec rejects ${JSON.stringify(spec)}`, () => {
    assert.throws(() => parseVolumeSpec(spec), (e: Error) => e.message.startsWith(`--volume ${JSON.stringify(spec)}:`) && why.test(e.message));
  });
}

test('volumes become session volumes with import/export and image mounts', () => {
  const s = sconeSession(opts({ volumes: ['V1:/V1', 'in:/in:producer-session', 'out:/out::consumer-1:consumer-2'] }));
  assert.deepEqual(validateSconeSession(s), []);
  assert.deepEqual(s.volumes, [
    { name: 'V1' },
    { name: 'in', import: { session: 'producer-session', volume: 'in' } },
    { name: 'out', export: [{ session: 'consumer-1' }, { session: 'consumer-2' }] },
  ]);
  assert.deepEqual(s.images![0].volumes, [
    { name: 'V1', path: '/V1' },
    { name: 'in', path: '/in' },
    { name: 'out', path: '/out' },
  ]);
  const parsed = sconeSession(opts({ volumes: [{ name: 'x', path: '/x', exportTo: ['c'] }] }));
  assert.deepEqual(parsed.volumes, [{ name: 'x', export: [{ session: 'c' }] }]);
});

test('duplicate or overlapping volumes are refused naming --volume', () => {
  assert.throws(() => sconeSession(opts({ volumes: ['a:/a', 'a:/b'] })), /--volume: duplicate volume name "a"/);
  assert.throws(() => sconeSession(opts({ volumes: ['a:/data', 'b:/data'] })), /--volume: mount path "\/data" overlaps/);
  assert.throws(() => sconeSession(opts({ volumes: ['a:/data', 'b:/data/sub'] })), /overlaps/);
  assert.doesNotThrow(() => sconeSession(opts({ volumes: ['a:/data', 'b:/data2'] })));
});

test('secrets and injected files merge from list and mapping fragments', () => {
  const s = sconeSession(
    opts({
      command: 'app --password $$SCONE::db_password$$',
      env: ['TOKEN=$$SCONE::api_token:hex$$'],
      secrets: [
        { source: 'a.yaml', text: '- name: db_password\n  kind: ascii\n  size: 16\n' },
        { source: 'b.yaml', text: 'secrets:\n  - name: api_token\n    kind: binary\n    size: 32\n  - name: tls_key\n    kind: private-key\n    key_type: P-384\n' },
        { source: 'c.yaml', value: { secrets: [{ name: 'shared', import: { session: 'other', secret: 'shared' } }] } },
      ],
      injectedFiles: [
        { source: 'i.yaml', text: '- path: /etc/app.conf\n  content: |\n    password=$$SCONE::db_password$$\n' },
        { source: 'j.yaml', text: 'injection_files:\n  - /etc/nginx/nginx.conf\n  - path: /etc/tls/key.pem\n    permission: 0o400\n    content: $$SCONE::tls_key:pem$$\n' },
      ],
    }),
  );
  assert.deepEqual(validateSconeSession(s), []);
  assert.deepEqual(
    s.secrets!.map((x) => x.name),
    ['db_password', 'api_token', 'tls_key', 'shared'],
  );
  assert.deepEqual(s.images![0].injection_files, [
    { path: '/etc/app.conf', content: 'password=$$SCONE::db_password$$\n' },
    '/etc/nginx/nginx.conf',
    { path: '/etc/tls/key.pem', permission: 0o400, content: '$$SCONE::tls_key:pem$$' },
  ]);
});

test('empty fragments are fine; other shapes are refused naming the file', () => {
  assert.equal(sconeSession(opts({ secrets: [{ source: 'empty.yaml', text: '' }] })).secrets, undefined);
  assert.throws(() => sconeSession(opts({ secrets: [{ source: 's.yaml', text: 'name: x\nkind: ascii\n' }] })), /--secrets s\.yaml: expected a list, or a mapping with the single key "secrets"/);
  assert.throws(() => sconeSession(opts({ injectedFiles: [{ source: 'i.yaml', text: 'secrets: []\n' }] })), /--injectedfiles i\.yaml: expected a list/);
  assert.throws(() => sconeSession(opts({ injectedFiles: [{ source: 'i.yaml', text: '- etc/relative\n' }] })), /--injectedfiles i\.yaml: injected file #1 is invalid/);
});

test('duplicates across fragments are refused naming both files', () => {
  assert.throws(
    () => sconeSession(opts({ secrets: [{ source: 'a.yaml', text: '- name: k\n  kind: ascii\n' }, { source: 'b.yaml', text: '- name: k\n  kind: binary\n' }] })),
    /--secrets b\.yaml: duplicate secret name "k" \(first in a\.yaml\)/,
  );
  assert.throws(
    () => sconeSession(opts({ injectedFiles: [{ source: 'a.yaml', text: '- /etc/x\n' }, { source: 'b.yaml', text: '- path: /etc/x\n  content: y\n' }] })),
    /--injectedfiles b\.yaml: duplicate injected file "\/etc\/x" \(first in a\.yaml\)/,
  );
});

test('a bad secret fragment is reported by file and entry, never by value', () => {
  const secretValue = 'p4ssw0rd-do-not-print';
  const check = (text: string, re: RegExp) =>
    assert.throws(
      () => sconeSession(opts({ secrets: [{ source: 'secrets.yaml', text }] })),
      (e: Error) => re.test(e.message) && !e.message.includes(secretValue),
    );
  check(`- name: pw\n  kind: ascii\n  value: ${secretValue}\n  colour: red\n`, /--secrets secrets\.yaml: secret #1 is invalid:\n.*additional properties \("colour"\)/s);
  check(`- name: pw\n  kind: binary\n  value: ${secretValue}\n`, /secret #1 is invalid/);
  check(`- name: pw\n  value: "${secretValue}\n  kind: [\n`, /--secrets secrets\.yaml: invalid YAML at line \d+, column \d+/);
  check(`- name: pw\n  name: pw2\n  value: ${secretValue}\n`, /invalid YAML/);
});

test('a placeholder naming an undefined secret is refused', () => {
  assert.throws(() => sconeSession(opts({ env: ['PW=$$SCONE::nope$$'] })), /environment PW: placeholder names secret "nope", which no --secrets file defines/);
  assert.throws(() => sconeSession(opts({ command: ['app', '$$SCONE::nope:hex$$'] })), /command: placeholder names secret "nope"/);
  assert.throws(
    () => sconeSession(opts({ injectedFiles: [{ source: 'i.yaml', text: '- path: /x\n  content: $$SCONE::nope$$\n' }] })),
    /injected file \/x: placeholder names secret "nope"/,
  );
  // The pre-5.2 suffix form $$SCONE::name.crt$$ refers to secret "name".
  assert.doesNotThrow(() =>
    sconeSession(opts({ env: ['C=$$SCONE::cert.crt$$'], secrets: [{ source: 's', text: '- name: cert\n  kind: x509\n  private_key: k\n- name: k\n  kind: private-key\n' }] })),
  );
});

test('tolerations: debug mode, TCB vulnerabilities, advisories', () => {
  assert.deepEqual(sconeSession(opts({ allowDebugMode: true })).security, { attestation: { tolerate: ['debug-mode'] } });
  const tcb = sconeSession(opts({ allowTcbVulnerabilities: true }));
  assert.deepEqual(tcb.security!.attestation!.tolerate, ['hyperthreading', 'insecure-igpu', 'outdated-tcb', 'software-hardening-needed', 'insecure-configuration', 'aepic-leak']);
  assert.equal(tcb.security!.attestation!.ignore_advisories, undefined, 'no wildcard outside debug mode');
  const listed = sconeSession(opts({ allowTcbVulnerabilities: true, ignoreAdvisories: ['INTEL-SA-00615', 'INTEL-SA-00657'] }));
  assert.deepEqual(listed.security!.attestation!.ignore_advisories, ['INTEL-SA-00615', 'INTEL-SA-00657']);
  const both = sconeSession(opts({ allowDebugMode: true, allowTcbVulnerabilities: true }));
  assert.equal(both.security!.attestation!.ignore_advisories, '*');
  assert.deepEqual(validateSconeSession(both), []);
});

test('the advisory wildcard is refused outside debug mode', () => {
  assert.throws(() => sconeSession(opts({ allowTcbVulnerabilities: true, ignoreAdvisories: '*' })), /ignoreAdvisories "\*": CAS accepts the wildcard only in debug mode/);
  assert.throws(() => sconeSession(opts({ ignoreAdvisories: ['INTEL-SA-1'] })), /security\/attestation\/ignore_advisories/);
});

test('predecessor and access policy', () => {
  const s = sconeSession(opts({ predecessor: 'AB'.repeat(32), accessPolicy: { read: ['ANY'], update: ['NONE'] } }));
  assert.equal(s.predecessor, 'ab'.repeat(32));
  assert.deepEqual(s.access_policy, { read: ['ANY'], update: ['NONE'] });
  assert.throws(() => sconeSession(opts({ predecessor: 'ab' })), /predecessor: expected 32 bytes/);
  assert.throws(() => sconeSession(opts({ accessPolicy: { read: ['ANY', 'CREATOR'] } })), /access_policy\/read/);
});

test('sconeNamespaceSession: the creator owns the namespace', () => {
  const n = sconeNamespaceSession({ namespace: 'org/team' });
  assert.deepEqual(n, { name: 'org/team', version: '0.3.10', access_policy: { read: ['CREATOR'], update: ['CREATOR'], create_sessions: ['CREATOR'] } });
  assert.throws(() => sconeNamespaceSession({ namespace: '' }), /namespace: required/);
});

test('sessionToYaml round-trips and quotes what YAML 1.1 readers would misread', () => {
  const tricky = ['on', 'yes', 'Y', 'off', 'null', '~', '0x1f', '0o17', '1:20', '0123', '12e3', '.5', 'true'];
  const s = sconeSession(
    opts({
      env: [...tricky.map((v, i) => `V${i}=${v}`), 'ON=1', `LONG=${'x'.repeat(200)} ${'y'.repeat(200)}`],
      command: `app ${'--flag '.repeat(40)}`.trim(),
      mrenclaves: ['1'.repeat(64)],
      fspf: { path: '/fspf/fs.fspf', key: '0'.repeat(64), tag: '1'.repeat(32) },
    }),
  );
  const text = sessionToYaml(s);
  assert.deepEqual(parse(text), s);
  assert.deepEqual(parse(text, { version: '1.1' }), s, 'a YAML 1.1 reader sees the same strings');
  assert.match(text, /^version: "0\.3\.10"$/m);
  assert.ok(!/[&*][a-z]+\d/.test(text), 'no anchors or aliases');
  assert.ok(text.split('\n').some((l) => l.includes('x'.repeat(200) + ' ' + 'y'.repeat(200))), 'long values are not folded');
});

test('sessionToYaml writes no aliases when objects are shared', () => {
  const shared = ['CREATOR'];
  const s = sconeSession(opts({ accessPolicy: { read: shared, update: shared } }));
  const text = sessionToYaml(s);
  assert.ok(!text.includes('&') && !text.includes('*a'), text);
});
