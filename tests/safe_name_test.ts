import assert from "node:assert/strict";
import {
  isContainedComponent,
  isSafeComponent,
  safeName,
  utf8Length,
} from "../lib/store/safe_name.ts";

const cases: Array<[string, string]> = [
  ["report.pdf", "report.pdf"],
  ["../../etc/passwd", ".._.._etc_passwd"],
  ["..", "_"],
  [".", "_"],
  ["", "_"],
  ["a\\b", "a_b"],
  ["C:\\x", "C__x"],
  ["/abs/path", "_abs_path"],
  ["nul\u0000byte\u0007bell\nline", "nul_byte_bell_line"],
  ["CON", "_CON"],
  ["aux.txt", "_aux.txt"],
  ["com1", "_com1"],
  ["console", "console"],
  ["trailing. . ", "trailing"],
  ['wh*t?<>|"', "wh_t_____"],
  ["e\u0301", "\u00e9"],
];

for (const [input, expected] of cases) {
  Deno.test(`safeName(${JSON.stringify(input)}) is ${JSON.stringify(expected)}`, () => {
    const out = safeName(input);
    assert.equal(out, expected);
    assert.ok(isSafeComponent(out));
  });
}

Deno.test("long names are cut to the byte limit on a code point boundary, keeping the extension", () => {
  const out = safeName("é".repeat(200) + ".pdf", 120);
  assert.equal(utf8Length(out), 120, "as long as the limit allows, no shorter");
  assert.ok(out.endsWith(".pdf"));
  assert.ok(!out.includes("\ufffd"));
  const emoji = safeName("😀".repeat(100), 10);
  assert.equal(emoji, "😀😀");
  assert.equal(utf8Length(safeName("a".repeat(300))), 120, "the default limit");
});

Deno.test("safe components refuse separators, dot names, reserved names and trailing dots", () => {
  for (const bad of ["", ".", "..", "a/b", "a\\b", "CON", "x.", "x ", "a\u0001", "x".repeat(256)]) {
    assert.equal(isSafeComponent(bad), false, bad);
  }
  for (const bad of ["", ".", "..", "a/b", "a\\b", "a\u0000"]) {
    assert.equal(isContainedComponent(bad), false, bad);
  }
  assert.equal(isContainedComponent("x."), true, "an existing matterbak name may end in a dot");
});
