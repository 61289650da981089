// The README's Electron example type-checks against this package's types
// (Electron itself is a stub: only the example's use of the client is checked).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

test('the README example compiles', () => {
  const readme = fs.readFileSync(path.join(PKG, 'README.md'), 'utf8');
  const code = /```ts\n([\s\S]*?)```/.exec(readme)[1];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'assetd-readme-'));
  try {
    const electron = path.join(dir, 'node_modules', 'electron');
    fs.mkdirSync(electron, { recursive: true });
    fs.writeFileSync(path.join(electron, 'package.json'), '{"name":"electron","types":"index.d.ts"}');
    fs.writeFileSync(
      path.join(electron, 'index.d.ts'),
      `export const app: { whenReady(): Promise<void>; on(ev: string, fn: () => void): void };
export class BrowserWindow { loadFile(f: string): Promise<void> }
export const ipcMain: { handle(ch: string, fn: (e: unknown, ...args: any[]) => unknown): void };`,
    );
    fs.mkdirSync(path.join(dir, 'node_modules', '@assetd'));
    fs.symlinkSync(PKG, path.join(dir, 'node_modules', '@assetd', 'client'));
    fs.writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}');
    fs.writeFileSync(path.join(dir, 'main.ts'), code);
    const tsc = path.join(PKG, 'node_modules', 'typescript', 'bin', 'tsc');
    const args = ['--strict', '--noEmit', '--skipLibCheck', '--module', 'nodenext', '--moduleResolution', 'nodenext',
      '--target', 'es2022', '--types', 'node', '--typeRoots', path.join(PKG, 'node_modules', '@types'), 'main.ts'];
    try {
      execFileSync(process.execPath, [tsc, ...args], { cwd: dir, encoding: 'utf8' });
    } catch (err) {
      assert.fail(`tsc: ${err.stdout}${err.stderr}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
