/**
 * Preload (`NODE_OPTIONS=--require dist/bench/cpuProfile.js`) that CPU-profiles a
 * process whose command line the bench does not own (node refuses --cpu-prof in
 * NODE_OPTIONS). Writes <BENCH_PROFILE_DIR>/<pid>-<n>.cpuprofile when the process
 * exits, and on each SIGWINCH (then profiles on), so a bench can take one profile
 * per phase (start, steady state, delete) of one process. Not SIGUSR2: the Temporal
 * SDK's runtime shuts its workers down on it; SIGWINCH is ignored by default.
 */
import fs from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';

const dir = process.env.BENCH_PROFILE_DIR;
if (dir) {
  const session = new inspector.Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.start');
  let written = 0;
  // A same-thread session answers synchronously, so this completes inside 'exit'.
  const write = () =>
    session.post('Profiler.stop', (err, result) => {
      if (!err) fs.writeFileSync(path.join(dir, `${process.pid}-${written++}.cpuprofile`), JSON.stringify(result.profile));
    });
  process.on('SIGWINCH', () => {
    write();
    session.post('Profiler.start');
  });
  process.on('exit', write);
}
