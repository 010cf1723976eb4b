/** compileTemplate(): any message text either compiles or fails through `fail`; a compiled one never throws. */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  compileTemplate,
  TEMPLATE_FIELDS,
  templateFields,
  type TemplateKind,
  type TemplateValues,
} from "../../src/rules/template.ts";
import { checkProperty } from "../helpers/property.ts";

class Refused extends Error {
  constructor(readonly path: (string | number)[], message: string) {
    super(message);
  }
}
const fail = (path: (string | number)[], message: string): never => {
  throw new Refused(path, message);
};

/** Text without braces, so the only placeholders are the ones a test puts in. */
const literal = fc.string({ maxLength: 12 }).map((s) => s.replace(/[{}]/g, ""));
const field = fc.constantFrom(...TEMPLATE_FIELDS);
const kind = fc.constantFrom<TemplateKind>("event", "window", "deadman");
const values = fc.dictionary(field, fc.oneof(fc.string(), fc.integer(), fc.constant(null)), { maxKeys: 8 });

Deno.test("compileTemplate() either compiles arbitrary text or refuses it through fail, never throwing", () => {
  const text = fc.array(
    fc.oneof(
      fc.string({ maxLength: 6 }),
      fc.constantFrom("{{", "}}", "{", "}", " ", "value", "metadata.", "nope"),
    ),
    { maxLength: 20 },
  ).map((parts) => parts.join(""));
  checkProperty(
    fc.property(
      text,
      values,
      fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 })),
      kind,
      (t, v, metadata, k) => {
        let render;
        try {
          render = compileTemplate(t, fail, k);
        } catch (err) {
          assert.ok(err instanceof Refused, `threw ${err}`);
          assert.deepEqual(err.path, []);
          assert.match(
            err.message,
            /^(Unknown placeholder "\{\{[^]*?\}\}"|Placeholder "\{\{[A-Za-z0-9_.]+\}\}" only has a value in)/,
          );
          return;
        }
        assert.equal(typeof render({ ...v, metadata } as TemplateValues), "string");
      },
    ),
    400,
  );
});

Deno.test("compileTemplate() puts each known field's value in place of its placeholder and keeps the rest", () => {
  const parts = kind.chain((k) =>
    fc.tuple(
      fc.constant(k),
      fc.array(
        fc.oneof(
          literal.map((text) => ({ text, name: null as string | null })),
          fc.tuple(fc.constantFrom(...templateFields(k)), fc.constantFrom("", " ", "  ")).map((
            [name, pad],
          ) => ({
            text: `{{${pad}${name}${pad}}}`,
            name,
          })),
        ),
        { maxLength: 10 },
      ),
    )
  );
  checkProperty(
    fc.property(parts, fc.dictionary(field, fc.string()), ([k, parts], v) => {
      const render = compileTemplate(parts.map((p) => p.text).join(""), fail, k);
      const expected = parts.map((p) => p.name === null ? p.text : v[p.name as keyof typeof v] ?? "").join(
        "",
      );
      assert.equal(render(v), expected);
    }),
    300,
  );
});

Deno.test("compileTemplate() refuses every placeholder outside the known fields, naming it", () => {
  const unknown = fc.stringMatching(/^[A-Za-z0-9_]{1,12}$/).filter((n) =>
    !(TEMPLATE_FIELDS as readonly string[]).includes(n)
  );
  checkProperty(
    fc.property(literal, unknown, literal, (before, name, after) => {
      assert.throws(() => compileTemplate(`${before}{{${name}}}${after}`, fail), (err: unknown) => {
        assert.ok(err instanceof Refused);
        assert.ok(err.message.startsWith(`Unknown placeholder "{{${name}}}"`), err.message);
        return true;
      });
    }),
  );
});
