// err.js REFERENCE.onnx OTHER.onnx ...: mean and worst |score - reference|
// over 80 pairs (8 queries x 10 documents of 5-155 words of the synthetic
// vocabulary) for a running aimind (AIMIND_URL, alias "m") and each other
// ONNX model, against the first model (ONNX Runtime FP32 on the F32 weights
// in scripts/ort-error.sh). Runs inside a copy of ../shared/bench/ort (its
// common.js tokenizes the pairs as aimind's XLM-R layout does).
const ort = require('onnxruntime-node');
const { pair, rng, text, batchFeeds } = require('./common.js');
const URL = process.env.AIMIND_URL || 'http://127.0.0.1:18850/v1/rerank';
(async () => {
  const r = rng(7);
  const cases = [];
  for (let c = 0; c < 8; c++) { const docs = []; for (let i = 0; i < 10; i++) docs.push(text(r, 5 + Math.floor(r() * 150))); cases.push([text(r, 3 + Math.floor(r() * 10)), docs]); }
  const models = process.argv.slice(2);
  const sess = {}; for (const m of models) sess[m] = await ort.InferenceSession.create(m, { intraOpNumThreads: 2, graphOptimizationLevel: 'all' });
  const err = {}; const ref = [];
  const add = (k, v) => { (err[k] = err[k] || []).push(v); };
  for (const [q, docs] of cases) {
    const res = await fetch(URL, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', query: q, documents: docs }) });
    const js = await res.json(); const aim = new Array(docs.length); for (const x of js.results) aim[x.index] = x.relevance_score;
    const out = {};
    for (const m of models) { out[m] = []; for (const d of docs) out[m].push((await sess[m].run(batchFeeds(ort, [pair(q, d)]).feeds)).logits.data[0]); }
    for (let i = 0; i < docs.length; i++) { const want = out[models[0]][i]; ref.push(want); add('aimind', Math.abs(aim[i] - want)); for (const m of models.slice(1)) add(m, Math.abs(out[m][i] - want)); }
  }
  const mean = a => a.reduce((x, y) => x + y, 0) / a.length;
  const spread = Math.sqrt(mean(ref.map(x => x * x)) - mean(ref) ** 2);
  console.log(`pairs=${ref.length} reference=${models[0]} score spread (sd)=${spread.toFixed(4)}`);
  for (const k of Object.keys(err)) console.log(`${k}: mean |error| ${mean(err[k]).toExponential(3)}  worst ${Math.max(...err[k]).toExponential(3)}`);
})().catch(e => { console.error(e); process.exit(1); });
