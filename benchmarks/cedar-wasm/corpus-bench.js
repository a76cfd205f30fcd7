// Times cedar-wasm over every corpus request with policies and schemas preparsed (entities are parsed per call,
// which the wasm API requires). Prints total milliseconds for the evaluation loop.
const cedar = require('@cedar-policy/cedar-wasm/nodejs');
const fs = require('fs');
const path = require('path');
const dir = process.argv[2];
const cases = [];
for (const f of fs.readdirSync(dir)) {
  const d = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
  const id = 'p' + cases.length;
  if (cedar.preparsePolicySet(id, { staticPolicies: d.policies }).type !== 'success') continue;
  const useSchema = d.schemaForAuthorization !== false;
  if (useSchema) cedar.preparseSchema(id, d.schema);
  cases.push({ id, useSchema, entities: d.entities, requests: d.requests });
}
let n = 0;
const t0 = process.hrtime.bigint();
for (const c of cases) {
  for (const q of c.requests) {
    const call = { principal: q.principal, action: q.action, resource: q.resource, context: q.context, preparsedPolicySetId: c.id, entities: c.entities };
    if (c.useSchema) call.preparsedSchemaName = c.id;
    cedar.statefulIsAuthorized(call);
    n++;
  }
}
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
console.log(`${n} requests in ${ms.toFixed(0)} ms (${(ms * 1000 / n).toFixed(1)} us/request)`);
