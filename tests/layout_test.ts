import { isMattermostId } from "../lib/model/records.ts";
import assert from "node:assert/strict";
import {
  fileDataName,
  fileIdFromDataName,
  groupLabel,
  idBase,
  idPrefix,
  imageExtension,
  postFileName,
  postIdFromFileName,
  postTimestamp,
} from "../lib/store/layout.ts";

const ID = "abcdefghijklmnopqrstuvwxyz";

Deno.test("post files are named by their UTC creation time with microseconds, then the id", () => {
  assert.equal(postTimestamp(Date.UTC(2024, 0, 31, 15, 45, 2, 123)), "20240131-154502123000");
  assert.equal(
    postFileName({ id: ID, create_at: Date.UTC(2024, 0, 31, 15, 45, 2, 123) }),
    `20240131-154502123000__${ID}.json`,
  );
});

Deno.test("post ids are read back from our names and matterbak's, nothing else", () => {
  assert.equal(postIdFromFileName(`20240131-154502123000__${ID}.json`), ID);
  assert.equal(postIdFromFileName(`${ID}.json`), undefined);
  assert.equal(postIdFromFileName(`20240131-154502123000__${ID}.json.mbtmp`), undefined);
});

Deno.test("attachment names keep the file id and a safe name", () => {
  assert.equal(fileDataName(ID, "../x.pdf"), `${ID}__.._x.pdf`);
  assert.equal(fileIdFromDataName(`${ID}__.._x.pdf`), ID);
  assert.equal(fileIdFromDataName(`${ID}.json`), undefined);
});

Deno.test("ids are 26 lowercase base32 characters", () => {
  assert.ok(isMattermostId(ID));
  for (
    const bad of ["", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "../../../../../../../../../", ID + "a", 42]
  ) {
    assert.equal(isMattermostId(bad), false);
  }
  assert.equal(idPrefix(`${ID}__name.json`), ID);
  assert.equal(idPrefix(`${ID}.json`), undefined);
});

Deno.test("bases and group labels are sanitised", () => {
  assert.equal(idBase(ID, "a/b"), `${ID}__a_b`);
  assert.equal(groupLabel(["zed", "amy", "b/ob"]), "amy__b_ob__zed");
});

Deno.test("image extensions follow matterbak, anything else is bin", () => {
  assert.equal(imageExtension("image/png"), "png");
  assert.equal(imageExtension("image/jpeg; charset=binary"), "jpeg");
  assert.equal(imageExtension("image/svg+xml"), "svg+xml");
  assert.equal(imageExtension("text/html"), "bin");
  assert.equal(imageExtension("image/../../x"), "bin");
  assert.equal(imageExtension(null), "bin");
});
