/**
 * Preload (`NODE_OPTIONS=--require dist/bench/cpuProfile.js`) that CPU-profiles a
 * process whose command line the bench does not own (node refuses --cpu-prof in
 * NODE_OPTIONS). Writes <BENCH_PROFILE_DIR>/<pid>.cpuprofile when the process exits.
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
  // A same-thread session answers synchronously, so this completes inside 'exit'.
  process.on('exit', () => {
    session.post('Profiler.stop', (err, result) => {
      if (!err) fs.writeFileSync(path.join(dir, `${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
