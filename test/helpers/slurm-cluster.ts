// A real Slurm cluster for tests: its own munged (own key, socket, pid and log files, so a munged the
// machine already runs is left alone), slurmctld and two slurmd (`slurmd -N <name>`, one per node, each
// on its own port, both on this host) in the foreground on free loopback ports, every file in one temp
// folder. Needs root and Debian's slurm-wlm and munge (.ci/run).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A running test cluster. */
export interface SlurmCluster {
  /** The slurm.conf client commands read (`SLURM_CONF`). */
  readonly conf: string;
  /** Where the cluster keeps its files (state, spool, logs). */
  readonly dir: string;
  /** The first node's name. */
  readonly node: string;
  /** Every node's name. */
  readonly nodes: readonly string[];
  /** Stops the controller (the nodes and their tasks run on), as in an outage. */
  stopController(): Promise<void>;
  /** Starts the controller again; resolves once it answers. */
  startController(): Promise<void>;
  /** Runs a Slurm client command against this cluster. */
  command(cmd: string, args: readonly string[]): Promise<string>;
  /** Cancels every job, stops the daemons and removes the folder. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

async function which(cmd: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Why this machine cannot start a test cluster (not root, packages missing), or undefined when it can.
 * @example test('on slurm', { skip: await slurmUnavailable() }, async () => { ... });
 */
export async function slurmUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'a test Slurm cluster needs root (munged and slurmd)';
  for (const cmd of ['munged', 'slurmctld', 'slurmd', 'sbatch'])
    if (!(await which(cmd))) return `${cmd} is not installed (apt-get install slurm-wlm munge)`;
  return undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function daemon(cmd: string, args: string[], options: { uid?: number; gid?: number } = {}): ChildProcess {
  const child = spawn(cmd, args, { stdio: 'ignore', ...options });
  child.on('error', () => undefined);
  return child;
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

/**
 * Starts a cluster of `nodes` nodes (default 2) of `cpus` CPUs each (default 1: two slots in all, as
 * many as this machine's cores), partition `debug`, and points this process's Slurm commands at it
 * (`process.env.SLURM_CONF`, restored by `stop`). Array tasks inherit the environment of `sbatch`.
 *
 * @example const cluster = await startSlurmCluster(); try { ... } finally { await cluster.stop(); }
 */
export async function startSlurmCluster(
  options: { cpus?: number; nodes?: number } = {},
): Promise<SlurmCluster> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-slurm-'));
  // munged refuses a socket folder others cannot traverse, and a key others can read.
  await chmod(dir, 0o755);
  const { stdout: uidText } = await run('id', ['-u', 'munge']);
  const { stdout: gidText } = await run('id', ['-g', 'munge']);
  const uid = Number(uidText.trim());
  const gid = Number(gidText.trim());
  const munge = path.join(dir, 'munge');
  await mkdir(munge);
  await chown(munge, uid, gid);
  await chmod(munge, 0o711);
  const key = path.join(munge, 'munge.key');
  await writeFile(key, randomBytes(1024), { mode: 0o400 });
  await chown(key, uid, gid);
  const socket = path.join(munge, 'munge.sock');
  for (const d of ['state', 'spool', 'log']) await mkdir(path.join(dir, d));
  const host = os.hostname().split('.')[0];
  const nodes = Array.from({ length: options.nodes ?? 2 }, (_, i) => `cai${i + 1}`);
  const node = nodes[0];
  const ctldPort = await freePort();
  const ports: number[] = [];
  for (const _ of nodes) ports.push(await freePort());
  for (const n of nodes) await mkdir(path.join(dir, 'spool', n), { recursive: true });
  const conf = path.join(dir, 'slurm.conf');
  await writeFile(
    conf,
    [
      'ClusterName=caitest',
      `SlurmctldHost=${host}(127.0.0.1)`,
      `SlurmctldPort=${ctldPort}`,
      'AuthType=auth/munge',
      `AuthInfo=socket=${socket}`,
      'CredType=cred/munge',
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'SchedulerType=sched/builtin',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core',
      `StateSaveLocation=${dir}/state`,
      // One slurmd per node on this host: %n is the node's name.
      `SlurmdSpoolDir=${dir}/spool/%n`,
      `SlurmctldPidFile=${dir}/slurmctld.pid`,
      `SlurmdPidFile=${dir}/slurmd-%n.pid`,
      `SlurmctldLogFile=${dir}/log/slurmctld.log`,
      `SlurmdLogFile=${dir}/log/slurmd-%n.log`,
      'SlurmUser=root',
      'ReturnToService=2',
      'JobAcctGatherType=jobacct_gather/none',
      'AccountingStorageType=accounting_storage/none',
      'MpiDefault=none',
      // A cancelled or timed-out task gets SIGKILL 2 s after SIGTERM (30 s by default): tests stay short.
      'KillWait=2',
      ...nodes.map(
        (n, i) =>
          `NodeName=${n} NodeHostname=${host} NodeAddr=127.0.0.1 Port=${ports[i]} CPUs=${options.cpus ?? 1} RealMemory=8000 State=UNKNOWN`,
      ),
      `PartitionName=debug Nodes=${nodes.join(',')} Default=YES MaxTime=INFINITE State=UP`,
      '',
    ].join('\n'),
  );
  const children: ChildProcess[] = [];
  let controller: ChildProcess | undefined;
  const previousConf = process.env.SLURM_CONF;
  process.env.SLURM_CONF = conf;
  const env = { ...process.env, SLURM_CONF: conf };
  const command = async (cmd: string, args: readonly string[]) => (await run(cmd, [...args], { env })).stdout;
  const stop = async () => {
    try {
      await command('scancel', ['--user=root']).catch(() => undefined);
      for (let i = 0; i < 50; i++) {
        const left = await command('squeue', ['-h', '-o', '%i']).catch(() => '');
        if (!left.trim()) break;
        await sleep(200);
      }
    } finally {
      if (controller) await stopChild(controller);
      for (const child of children.reverse()) await stopChild(child);
      if (previousConf === undefined) delete process.env.SLURM_CONF;
      else process.env.SLURM_CONF = previousConf;
      await rm(dir, { recursive: true, force: true });
    }
  };
  try {
    children.push(
      daemon(
        'munged',
        [
          '--foreground',
          `--socket=${socket}`,
          `--key-file=${key}`,
          `--log-file=${munge}/munged.log`,
          `--pid-file=${munge}/munged.pid`,
          `--seed-file=${munge}/munged.seed`,
        ],
        { uid, gid },
      ),
    );
    for (let i = 0; i < 50; i++) {
      if (
        await run('munge', ['-n', `--socket=${socket}`]).then(
          () => true,
          () => false,
        )
      )
        break;
      await sleep(100);
    }
    controller = daemon('slurmctld', ['-D', '-f', conf]);
    for (const n of nodes) children.push(daemon('slurmd', ['-D', '-f', conf, '-N', n]));
    for (let i = 0; ; i++) {
      const state = await command('sinfo', ['-h', '-N', '-o', '%T']).catch(() => '');
      const states = state.trim().split('\n');
      if (states.length === nodes.length && states.every((x) => x === 'idle')) break;
      if (i > 150) throw new Error(`the test Slurm cluster did not come up (sinfo: "${state.trim()}")`);
      await sleep(100);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const stopController = async () => {
    if (controller) await stopChild(controller);
    controller = undefined;
  };
  const startController = async () => {
    controller ??= daemon('slurmctld', ['-D', '-f', conf]);
    for (let i = 0; i < 300; i++) {
      if (
        await command('squeue', ['-h']).then(
          () => true,
          () => false,
        )
      )
        return;
      await sleep(100);
    }
    throw new Error('the test Slurm controller did not come back');
  };
  return { conf, dir, node, nodes, command, stop, stopController, startController };
}
