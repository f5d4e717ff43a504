import { describe, test } from 'vitest';
import { storeSuite } from './store-suite.ts';
import { TEST_DATABASE_URL } from './helpers/databases.ts';

if (TEST_DATABASE_URL) storeSuite('postgres');
else describe.skip('store on postgres (set TEST_DATABASE_URL)', () => test('skipped', () => {}));
