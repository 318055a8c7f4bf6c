// The docs name files that exist: every backticked path ending in .ts/.md/.yml/.sh and every local Markdown link in
// README.md, docs/ and bench/*.md, so a move that forgets the docs fails here.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const root = join(__dirname, '..', '..');
const docs = [
  'README.md',
  ...readdirSync(join(root, 'docs')).map((f) => `docs/${f}`),
  ...readdirSync(join(root, 'bench'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `bench/${f}`),
].filter((f) => f.endsWith('.md') && f !== 'bench/results.md'); // the run journal records paths as they were

const codeSpan = /`([^`\n]+)`/g;
const pathInSpan = /(?<![\w./-])((?:\.{1,2}\/)?[\w.-]+(?:\/[\w.-]+)*\.(?:ts|md|yml|sh))(?![\w/])/g;
const localLink = /\[[^\]]*\]\(([^)\s#]+)(?:#[^)]*)?\)/g;

it.each(docs)('%s names only files that exist', (doc) => {
  const text = readFileSync(join(root, doc), 'utf8');
  const missing: string[] = [];
  for (const [, span] of text.matchAll(codeSpan)) {
    for (const [path] of span!.matchAll(pathInSpan)) {
      if (!existsSync(join(root, path))) missing.push(`\`${path}\``);
    }
  }
  for (const [, target] of text.matchAll(localLink)) {
    if (/^[a-z]+:/.test(target!)) continue;
    if (!existsSync(join(root, dirname(doc), target!))) missing.push(`(${target})`);
  }
  expect(missing).toEqual([]);
});
