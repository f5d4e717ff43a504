// Builds dist/ unless it already is the build of the current sources (`npm ci` just built it).
import { execFileSync } from 'node:child_process';
import { distIsFresh, ROOT } from './source-stamp.mjs';

if (distIsFresh()) {
  console.error('dist/ is up to date');
} else {
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
}
