// Runs the official @huggingface/hub client against a hubtest server and prints what it saw as
// JSON, for hub/hubtest/js_test.go to compare with what the server holds.
//
//   node check.mjs HUB_URL REPO_ID FILE...
import { createHash } from "node:crypto";
import { downloadFile, listFiles, modelInfo } from "@huggingface/hub";

const [hubUrl, repo, ...paths] = process.argv.slice(2);
const out = { files: [], info: null, downloads: {} };

for await (const f of listFiles({ repo, hubUrl, recursive: true })) {
	out.files.push({ type: f.type, path: f.path, size: f.size, oid: f.oid, lfsOid: f.lfs?.oid ?? null });
}
const info = await modelInfo({ name: repo, hubUrl, additionalFields: ["sha", "author"] });
out.info = { name: info.name, private: info.private, gated: info.gated, sha: info.sha, author: info.author };
for (const path of paths) {
	const blob = await downloadFile({ repo, path, hubUrl });
	const bytes = Buffer.from(await blob.arrayBuffer());
	out.downloads[path] = { size: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") };
}
console.log(JSON.stringify(out));
