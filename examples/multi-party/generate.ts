/**
 * The SCONE multi-stakeholder pattern, generated with enclavify: two services owned by different
 * parties, and a workflow session owned by the party that owns the result, which defines the
 * encrypted volumes and exports them to the parties' sessions.
 *
 *   workflow-owner/workflow   volumes `dataset` (exported to both parties) and `model` (to Party B)
 *   party-a/preprocess        Party A's service: imports `dataset`, has its own volume `raw`
 *   party-b/train             Party B's service: imports `dataset` and `model`
 *
 * Each party converts its own image and owns its own session (CAS `CREATOR`), so neither can read
 * or change the other's code, policy or data; the cloud provider sees only ciphertext.
 *
 * Usage: node --import tsx examples/multi-party/generate.ts [--out DIR]   (default DIR: ./out)
 * Writes DIR/multi-party/{workflow,party-a,party-b}/. See README.md.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { emitChart, emitPolicy, imageFromDirectory, injectRuntime, pipeline, scone, writeImage, POLICY } from '../../lib/index.js';
import { formatProblems, parseVolumeSpec, sessionToYaml, validateSconeSession, volumeEntries, type SconeSession } from '../../lib/policy/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BUILD_TIME = 1700000000;
/** Matches no enclave until replaced by the measured value (SCONE_HASH=1 <binary>). */
const PLACEHOLDER_MRENCLAVE = '0'.repeat(64);

/** The workflow owner's session: its name, and the parties' sessions each volume goes to. */
export const WORKFLOW = 'workflow-owner/workflow';

/** One party: its namespace, session, service, app directory and volumes (`NAME:PATH[:FROM]`). */
export interface Party {
  dir: string;
  namespace: string;
  session: string;
  service: string;
  command: string;
  volumes: string[];
}

export const PARTIES: Party[] = [
  { dir: 'party-a', namespace: 'party-a', session: 'preprocess', service: 'preprocess', command: '/app/preprocess.sh', volumes: ['raw:/data/raw', `dataset:/data/dataset:${WORKFLOW}`] },
  { dir: 'party-b', namespace: 'party-b', session: 'train', service: 'train', command: '/app/train.sh', volumes: [`dataset:/data/dataset:${WORKFLOW}`, `model:/data/model:${WORKFLOW}`] },
];

/**
 * The workflow session: only volumes, each exported to the sessions of the parties that import
 * it (built from the parties' own `--volume` specs, so the names cannot drift apart).
 */
export function workflowSession(parties: Party[]): SconeSession {
  const exports = new Map<string, string[]>();
  for (const p of parties) {
    for (const v of p.volumes.map(parseVolumeSpec)) {
      if (v.importFrom === WORKFLOW) exports.set(v.name, [...(exports.get(v.name) ?? []), `${p.namespace}/${p.session}`]);
    }
  }
  // The mount path only matters to services; the workflow session declares and exports.
  const { volumes } = volumeEntries([...exports].map(([name, to]) => parseVolumeSpec(`${name}:/${name}::${to.join(':')}`)));
  const session: SconeSession = {
    name: WORKFLOW,
    version: '0.3.10',
    access_policy: { read: ['CREATOR'], update: ['CREATOR'] },
    volumes,
  };
  const problems = validateSconeSession(session);
  if (problems.length) throw new Error(`workflow session invalid:\n${formatProblems(problems)}`);
  return session;
}

async function writeArtifact(file: string, data: Uint8Array | string, secret: boolean): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, data, { mode: secret ? 0o600 : 0o644 });
  await chmod(file, secret ? 0o600 : 0o644);
}

/** Converts one party's app: SCONE runtime settings, its session (importing the workflow's volumes) and its chart. */
async function convertParty(p: Party, out: string, tmp: string): Promise<string> {
  await using native = await imageFromDirectory({
    dir: path.join(here, p.dir, 'app'),
    prefix: '/app',
    tmpDir: tmp,
    mtime: BUILD_TIME,
    modes: 'normalize',
    config: { Entrypoint: [p.command], WorkingDir: '/app', Env: ['PATH=/usr/bin:/bin'] },
  });
  const image = `registry.example/${p.namespace}/${p.service}:1.0`;
  await using result = await pipeline(
    native,
    [
      injectRuntime(scone({ namespace: p.namespace, name: p.session, serviceName: p.service })),
      emitPolicy({ mrenclaves: [process.env.MULTI_PARTY_MRENCLAVE ?? PLACEHOLDER_MRENCLAVE], scone: { volumes: p.volumes } }),
      emitChart({ image, encryptedVolumes: p.volumes, manifestsPath: 'manifests.yaml' }),
    ],
    { tmpDir: tmp, created: new Date(BUILD_TIME * 1000) },
  );
  const dir = path.join(out, p.dir);
  const written = await writeImage(result.image, `oci:${path.join(dir, 'image')}:1.0`);
  for (const a of result.artifacts.values()) await writeArtifact(path.join(dir, a.path), a.data, a.secret === true);
  const session = result.state.get(POLICY)!.sessionId!;
  console.log(`${p.dir}: image ${written.digest}, session ${session}`);
  return session;
}

/** Generates the three sessions (and the parties' images and charts) under `<out>/multi-party`. */
export async function main(argv: string[]): Promise<void> {
  const i = argv.indexOf('--out');
  const out = path.join(path.resolve(i >= 0 && argv[i + 1] ? argv[i + 1] : 'out'), 'multi-party');
  const tmp = await mkdtemp(path.join(tmpdir(), 'enclavify-multi-party-'));
  try {
    const workflow = workflowSession(PARTIES);
    await writeArtifact(path.join(out, 'workflow', 'session.yaml'), sessionToYaml(workflow), false);
    console.log(`workflow: session ${workflow.name}`);
    for (const p of PARTIES) await convertParty(p, out, tmp);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main(process.argv.slice(2));
}
