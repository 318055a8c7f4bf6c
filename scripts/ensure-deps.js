// Runs before `npm start` and `npm test`: installs the pinned dependencies on a fresh clone, so those two commands suffice.
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const { spawnSync } = require('node:child_process');

const root = join(__dirname, '..');
if (!existsSync(join(root, 'node_modules', '.bin', 'tsx'))) {
  console.log('billops: installing dependencies (npm install, first run only)...');
  const result = spawnSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error('billops: npm install failed; fix the error above and run the command again.');
    process.exit(result.status ?? 1);
  }
}
