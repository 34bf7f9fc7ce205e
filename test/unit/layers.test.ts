// The import directions in eslint.config.js (`layers`): a wrong import fails lint,
// and with it `npm test`. Linted here with the project's own rules.
import t from 'tap';
import { Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const { layers } = (await import(`${root}eslint.config.js`)) as { layers: Linter.Config[] };
const linter = new Linter({ cwd: root });
const config: Linter.Config[] = [
  { files: ['**/*.ts'], languageOptions: { parser: tseslint.parser as Linter.Parser } },
  ...layers,
];

/** The messages of the layer rule for one import line in a file at `file`. */
function refused(file: string, spec: string): string[] {
  const messages = linter.verify(`import { x } from '${spec}';\nexport const y = x;\n`, config, { filename: `${root}${file}` });
  return messages.map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

const cases: [string, string, boolean][] = [
  // [file, import, refused?]
  ['apply/replay/ops.ts', '../../agent/capture/mapper.js', true],
  ['apply/replay/ops.ts', '../core/db.js', false],
  ['apply/replay/ops.ts', '../codec/encode.js', false],
  ['apply/replay/ops.ts', './sql.js', false],
  ['apply/codec/encode.ts', '../replay/ops.js', true],
  ['apply/codec/encode.ts', '../../agent/log.js', true],
  ['apply/codec/encode.ts', '../core/model.js', false],
  ['apply/core/db.ts', '../codec/encode.js', true],
  ['apply/core/db.ts', '../../agent/node.js', true],
  ['apply/core/db.ts', './errors.js', false],
  ['agent/capture/capture.ts', '../../apply/replay/carry.js', false],
  ['agent/capture/capture.ts', '../../test/helpers/cli.js', true],
  ['agent/capture/capture.ts', '../../deploy/demo-support.js', true],
  ['deploy/demo.ts', '../test/helpers/sync-net.js', true],
  ['deploy/demo.ts', './sandbox/mariadb.js', false],
  ['deploy/demo.ts', '../agent/node.js', false],
];
for (const [file, spec, expectRefused] of cases) {
  const messages = refused(file, spec);
  t.same(messages.filter((m) => !m.startsWith('no-restricted-imports')), [], `${file}: parsed without other problems`);
  t.equal(messages.length > 0, expectRefused, `${file} importing ${spec}: ${expectRefused ? 'refused' : 'allowed'} (${messages.join('; ') || 'no message'})`);
}
