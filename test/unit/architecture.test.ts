// The import rules of docs/architecture.md (scripts/importRules.cjs, which eslint reads too): which folder may import
// which, and no import cycle anywhere. Reads the source with TypeScript's parser, no servers; a failure names the
// file, the import and the rule it breaks.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { ALLOWED_PACKAGES, FOLDERS, IMPORT_RULES } from '../../scripts/importRules.cjs';

const root = resolve(__dirname, '..', '..');

/** Whether a module is `target` (a folder, or one module or sub-folder such as `activities/invoicing`) or inside it. */
const within = (file: string, target: string): boolean =>
  file === `${target}.ts` || file.startsWith(`${target}/`);

interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mjs)$/.test(name) && !name.endsWith('.d.ts') ? [relative(root, path)] : [];
  });
}

function resolveImport(fromFile: string, specifier: string): string | undefined {
  const base = resolve(root, dirname(fromFile), specifier);
  for (const candidate of [base, `${base}.ts`, `${base}.mjs`, join(base, 'index.ts')]) {
    try {
      if (statSync(candidate).isFile()) return relative(root, candidate);
    } catch {
      // not this candidate
    }
  }
  return undefined;
}

/** Every import of a file: static, `export ... from`, dynamic `import()` and `require()`, marked type-only or not. */
function importsOf(file: string): { specifier: string; typeOnly: boolean }[] {
  const source = ts.createSourceFile(
    file,
    readFileSync(join(root, file), 'utf8'),
    ts.ScriptTarget.ES2022,
    true,
  );
  const found: { specifier: string; typeOnly: boolean }[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const elements =
        clause?.namedBindings && ts.isNamedImports(clause.namedBindings) ? clause.namedBindings.elements : [];
      const typeOnly =
        Boolean(clause?.isTypeOnly) ||
        (clause !== undefined && !clause.name && elements.length > 0 && elements.every((e) => e.isTypeOnly));
      found.push({ specifier: node.moduleSpecifier.text, typeOnly });
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      found.push({ specifier: node.moduleSpecifier.text, typeOnly: node.isTypeOnly });
    } else if (
      ts.isCallExpression(node) &&
      (node.expression.kind === ts.SyntaxKind.ImportKeyword ||
        (ts.isIdentifier(node.expression) && node.expression.text === 'require') ||
        (ts.isPropertyAccessExpression(node.expression) &&
          node.expression.getText() === 'require.resolve')) &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      found.push({ specifier: node.arguments[0].text, typeOnly: false });
    } else if (
      ts.isImportTypeNode(node) &&
      ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteral(node.argument.literal)
    ) {
      found.push({ specifier: node.argument.literal.text, typeOnly: true });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

const files = FOLDERS.flatMap((folder) => sourceFiles(join(root, folder)));
const edges: Edge[] = [];
const packageImports: { from: string; name: string }[] = [];
for (const file of files) {
  for (const { specifier, typeOnly } of importsOf(file)) {
    if (specifier.startsWith('.')) {
      const to = resolveImport(file, specifier);
      if (to) edges.push({ from: file, to, typeOnly });
    } else if (!typeOnly) {
      packageImports.push({
        from: file,
        name: specifier.startsWith('@')
          ? specifier.split('/').slice(0, 2).join('/')
          : specifier.split('/')[0]!,
      });
    }
  }
}

const folderOf = (file: string): string => file.split('/')[0]!;

function allowed(edge: Edge): boolean {
  const from = folderOf(edge.from);
  const rule = IMPORT_RULES[from];
  if (!rule || folderOf(edge.to) === from) return true;
  const targets = edge.typeOnly ? [...rule.may, ...(rule.types ?? [])] : rule.may;
  return targets.some((target) => within(edge.to, target));
}

/** Tarjan's strongly connected components over the file graph; every component of two or more files is a cycle. */
function cycles(nodes: string[], graph: Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of graph) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let counter = 0;
  const connect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) components.push(component.sort());
    }
  };
  for (const v of nodes) if (!index.has(v)) connect(v);
  return components;
}

describe('import rules', () => {
  it('reads the production folders', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(edges.length).toBeGreaterThan(300);
  });

  it('has no import between folders that the rules forbid', () => {
    const forbidden = edges
      .filter((e) => !allowed(e))
      .map((e) => `${e.from} → ${e.to}${e.typeOnly ? ' (type)' : ''}`);
    expect(forbidden).toEqual([]);
  });

  it('keeps domain/ and workflows/ deterministic: no node:* and no I/O package', () => {
    const offending = packageImports
      .filter(({ from, name }) => {
        const allowedPackages = ALLOWED_PACKAGES[folderOf(from)];
        return allowedPackages !== undefined && !allowedPackages.includes(name);
      })
      .map(({ from, name }) => `${from} → ${name}`);
    expect(offending).toEqual([]);
  });

  it('has no import cycle', () => {
    expect(cycles(files, edges)).toEqual([]);
  });

  it('tells a forbidden edge and a cycle apart from allowed ones', () => {
    expect(allowed({ from: 'workflows/dunning.ts', to: 'activities/index.ts', typeOnly: true })).toBe(true);
    expect(allowed({ from: 'workflows/dunning.ts', to: 'activities/index.ts', typeOnly: false })).toBe(false);
    expect(allowed({ from: 'domain/money.ts', to: 'db/pool.ts', typeOnly: false })).toBe(false);
    expect(allowed({ from: 'cli/usage.ts', to: 'activities/invoicing/index.ts', typeOnly: false })).toBe(
      true,
    );
    expect(allowed({ from: 'cli/usage.ts', to: 'workflows/definitions.ts', typeOnly: false })).toBe(true);
    expect(allowed({ from: 'cli/usage.ts', to: 'workflows/dunning.ts', typeOnly: false })).toBe(false);
    expect(allowed({ from: 'cli/usage.ts', to: 'activities/payments.ts', typeOnly: false })).toBe(false);
    expect(
      cycles(
        ['a', 'b', 'c'],
        [
          { from: 'a', to: 'b', typeOnly: false },
          { from: 'b', to: 'a', typeOnly: false },
          { from: 'b', to: 'c', typeOnly: false },
        ],
      ),
    ).toEqual([['a', 'b']]);
  });
});
