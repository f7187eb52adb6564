/**
 * schemas/scone-session.schema.json: accepts the real sessions from SCONE's public documentation
 * (spec/policy/fixtures, each naming its source) and rejects malformed ones.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { validateSconeSession, formatProblems } from '../../lib/policy/validate.js';
import { sessionToYaml } from '../../lib/policy/scone-session.js';
import { repoRoot } from '../helpers/tools.js';

const fixtureDir = path.join(repoRoot, 'spec', 'policy', 'fixtures');
const fixtures = readdirSync(fixtureDir).filter((f) => f.endsWith('.yaml'));

const load = (f: string) => parse(readFileSync(path.join(fixtureDir, f), 'utf8'));

test('there are several real SCONE sessions to check against', () => {
  assert.ok(fixtures.length >= 5, fixtures.join(', '));
  for (const f of fixtures) {
    assert.match(readFileSync(path.join(fixtureDir, f), 'utf8'), /^# Source: https:\/\//, `${f} names its source`);
  }
});

for (const f of fixtures) {
  test(`the schema accepts the documented session ${f}`, () => {
    const problems = validateSconeSession(load(f));
    assert.deepEqual(problems, [], formatProblems(problems));
  });

  test(`sessionToYaml round-trips the documented session ${f}`, () => {
    const session = load(f);
    assert.deepEqual(parse(sessionToYaml(session)), session);
  });
}

const HEX64 = 'e2f7cb1c13fa16d2a48f1727ebf1c20ac8185e72e14f647e876072e1f006377d';
const KEY = '4ee511ed8963f1b8034f33cfbb57f8800a6c2f17e64e4ed89122fc25e2ee50b1';

/** A minimal valid session to break in one place at a time. */
function base(): any {
  return {
    name: 'ns/app',
    version: '0.3.10',
    access_policy: { read: ['CREATOR'], update: ['CREATOR'] },
    services: [
      {
        name: 'svc',
        image_name: 'svc_image',
        mrenclaves: [HEX64],
        command: 'python3 /app.py',
        environment: { SCONE_MODE: 'hw' },
        pwd: '/',
        fspf_path: '/fspf/fs.fspf',
        fspf_key: KEY,
        fspf_tag: '849565fe4a941e2be3bcc3c9d46f40c1',
      },
    ],
    volumes: [{ name: 'V1' }],
    images: [{ name: 'svc_image', volumes: [{ name: 'V1', path: '/V1' }] }],
  };
}

test('the minimal base session is valid', () => {
  assert.deepEqual(validateSconeSession(base()), []);
});

const rejects: [string, (s: any) => void, RegExp][] = [
  ['a name with a space', (s) => (s.name = 'ns/my app'), /^\/name/],
  ['an empty namespace segment', (s) => (s.name = 'ns//app'), /^\/name/],
  ['a ".." segment', (s) => (s.name = 'ns/../app'), /^\/name/],
  ['a segment over 128 characters', (s) => (s.name = 'a'.repeat(129)), /^\/name/],
  ['an unknown top-level key', (s) => (s.policy = {}), /additional properties \("policy"\)/],
  ['a missing version', (s) => delete s.version, /version/],
  ['version 0.2', (s) => (s.version = '0.2'), /^\/version/],
  ['a predecessor that is not hex', (s) => (s.predecessor = 'z'.repeat(64)), /^\/predecessor/],
  ['a 31-byte MRENCLAVE', (s) => (s.services[0].mrenclaves = [HEX64.slice(2)]), /^\/services\/0\/mrenclaves\/0/],
  ['an MRENCLAVE with a non-hex digit', (s) => (s.services[0].mrenclaves = ['g' + HEX64.slice(1)]), /^\/services\/0\/mrenclaves\/0/],
  ['a 15-byte fspf_tag', (s) => (s.services[0].fspf_tag = '00'.repeat(15)), /^\/services\/0\/fspf_tag/],
  ['an fspf_tag without fspf_key', (s) => delete s.services[0].fspf_key, /fspf_key/],
  ['an unknown service key', (s) => (s.services[0].entrypoint = '/bin/sh'), /additional properties \("entrypoint"\)/],
  ['a relative pwd', (s) => (s.services[0].pwd = 'code'), /^\/services\/0\/pwd/],
  ['an environment name with "="', (s) => (s.services[0].environment = { 'A=B': 'x' }), /^\/services\/0\/environment/],
  ['an empty command', (s) => (s.services[0].command = ''), /^\/services\/0\/command/],
  ['ANY next to CREATOR', (s) => (s.access_policy.read = ['ANY', 'CREATOR']), /^\/access_policy\/read/],
  ['an unknown toleration', (s) => (s.security = { attestation: { tolerate: ['everything'] } }), /tolerate\/0/],
  ['advisory wildcard without debug-mode', (s) => (s.security = { attestation: { tolerate: ['outdated-tcb'], ignore_advisories: '*' } }), /tolerate/],
  ['a malformed advisory id', (s) => (s.security = { attestation: { tolerate: ['outdated-tcb'], ignore_advisories: ['SA-1'] } }), /ignore_advisories/],
  ['an imported volume with its own key', (s) => (s.volumes = [{ name: 'V1', import: { session: 'other', volume: 'V1' }, fspf_key: KEY }]), /^\/volumes\/0/],
  ['an imported volume that is also exported', (s) => (s.volumes = [{ name: 'V1', import: { session: 'a', volume: 'V1' }, export: [{ session: 'b' }] }]), /^\/volumes\/0/],
  ['an export naming both session and namespace', (s) => (s.volumes = [{ name: 'V1', export: [{ session: 'a', namespace: 'b' }] }]), /^\/volumes\/0\/export/],
  ['a binary secret with a non-hex value', (s) => (s.secrets = [{ name: 'k', kind: 'binary', value: 'not hex' }]), /^\/secrets\/0\/value/],
  ['an unknown secret kind', (s) => (s.secrets = [{ name: 'k', kind: 'password' }]), /^\/secrets\/0\/kind/],
  ['a signer with both isvsvn and isvsvn_min', (s) => (s.services[0].attestation = { signer: { mrsigner: HEX64, isvprodid: 1, isvsvn: 2, isvsvn_min: 1 } }), /attestation/],
  ['a relative injection path', (s) => (s.images[0].injection_files = ['etc/app.conf']), /injection_files\/0/],
  ['duplicate secret names', (s) => (s.secrets = [{ name: 'k', kind: 'ascii' }, { name: 'k', kind: 'binary' }]), /^\/secrets\/1\/name: duplicate/],
  ['duplicate service names', (s) => s.services.push({ ...s.services[0] }), /^\/services\/1\/name: duplicate/],
  ['an image volume that is not declared', (s) => (s.images[0].volumes[0].name = 'V2'), /not declared/],
];

for (const [what, mutate, where] of rejects) {
  test(`the schema rejects ${what}`, () => {
    const s = base();
    mutate(s);
    const problems = validateSconeSession(s);
    assert.notDeepEqual(problems, [], 'expected problems');
    assert.ok(
      problems.some((p) => where.test(`${p.path}: ${p.message}`)),
      `no problem matching ${where}:\n${formatProblems(problems)}`,
    );
  });
}

test('schema problems name the place, never the value of a key', () => {
  const s = base();
  s.services[0].fspf_key = KEY.slice(0, 62) + 'zz';
  s.services[0].fspf_path = 'relative';
  const text = formatProblems(validateSconeSession(s));
  assert.match(text, /fspf_key/);
  assert.ok(!text.includes(KEY.slice(0, 62)), text);
});
