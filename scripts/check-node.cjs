// Refuses an unsupported Node before `npm start` or `npm test` does anything: billops runs on Node 22 and 24.
'use strict';
const major = Number(process.versions.node.split('.')[0]);
const SUPPORTED = [22, 24];
if (major < SUPPORTED[0] || major > SUPPORTED[SUPPORTED.length - 1]) {
  console.error(
    `billops needs Node ${SUPPORTED.join(' or ')}; this is Node ${process.versions.node}` +
      (major < 22 ? ' (Node 20 reached its end of life in April 2026)' : '') +
      '.\nInstall Node 24, or let billops fetch it from the npm registry:\n' +
      '  bash scripts/provision.sh node && export PATH="$PWD/.tools/node/bin:$PATH"\n' +
      'then run the command again.',
  );
  process.exit(1);
}
