import { runJob } from '../../src/run/run.js';
import { engineContract } from './contract.js';

engineContract({
  name: 'local',
  run: runJob,
  crashOnce(partition) {
    let killed = false;
    return {
      spec: { concurrency: 1 },
      options: {
        onEvent: (e) => {
          if (e.type === 'start' && e.partition.id === partition && !killed) {
            killed = true;
            process.kill(e.pid, 'SIGKILL');
          }
        },
      },
    };
  },
});
