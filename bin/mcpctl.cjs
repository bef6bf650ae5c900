#!/usr/bin/env node
/**
 * `npx mcpctl`: the package's bin is this checked-in launcher, not the compiled
 * dist/src/cli/mcpctl.js. npx runs a project's own bin through a link it makes once
 * per checkout in npm's npx cache, and only for bins whose file exists at that moment;
 * a bin pointing into dist/ was never linked when `npx mcpctl` ran before the first
 * build, and stayed "sh: 1: mcpctl: not found" after it. This file always exists.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'dist', 'src', 'cli', 'mcpctl.js');
if (!fs.existsSync(cli)) {
  process.stderr.write(`error: mcpctl is not built yet (${path.relative(root, cli)} is missing): run \`npm start\` or \`npm run build\` in ${root} first\n`);
  process.exit(2);
}
require(cli)
  .main()
  // Exit explicitly: an idle keep-alive socket must not hold a finished command open.
  .then((code) => process.exit(code));
