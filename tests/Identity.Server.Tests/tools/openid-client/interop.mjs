// DPoP as openid-client does it: discovery, a client_credentials grant with a proof, then the bound token at a
// resource of the server with a proof (fetchProtectedResource) and without one (a plain bearer call).
// Env: ISSUER, CLIENT_ID, CLIENT_SECRET, SCOPE, RESOURCE (a URL). Prints the outcome as JSON.
import * as client from "openid-client";

const env = process.env;
const config = await client.discovery(new URL(env.ISSUER), env.CLIENT_ID, env.CLIENT_SECRET, undefined,
  { execute: [client.allowInsecureRequests] });
const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair("ES256"));
const tokens = await client.clientCredentialsGrant(config, { scope: env.SCOPE }, { DPoP: dpop });
const resource = new URL(env.RESOURCE);
const withProof = await client.fetchProtectedResource(config, tokens.access_token, resource, "GET", undefined, undefined, { DPoP: dpop });
const again = await client.fetchProtectedResource(config, tokens.access_token, resource, "GET", undefined, undefined, { DPoP: dpop });
const asBearer = await fetch(resource, { headers: { authorization: `Bearer ${tokens.access_token}` } });
const introspection = await client.tokenIntrospection(config, tokens.access_token);
console.log(JSON.stringify({
  tokenType: tokens.token_type,
  withProof: withProof.status,
  again: again.status,
  asBearer: asBearer.status,
  jkt: introspection.cnf?.jkt ?? null,
}));
