// Types of scripts/importRules.cjs for the TypeScript that reads it (test/unit/architecture.test.ts).
export declare const FOLDERS: readonly string[];
export declare const IMPORT_RULES: Record<string, { may: readonly string[]; types?: readonly string[] }>;
export declare const ALLOWED_PACKAGES: Record<string, readonly string[]>;
