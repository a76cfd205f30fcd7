// Request objects (RFC 9101) as openid-client makes them, for a client that authenticates with private_key_jwt.
// PHASE=start: prints {url, verifier, state}, the authorization URL with the signed request object in `request`.
// PHASE=finish: redeems CALLBACK (the redirect the browser got) with VERIFIER and STATE, and prints the ID token's claims.
// Env: ISSUER, CLIENT_ID, REDIRECT_URI, PRIVATE_JWK (the client's RSA key as a JWK, with kid).
import * as client from "openid-client";

const env = process.env;
const jwk = JSON.parse(env.PRIVATE_JWK);
const key = await crypto.subtle.importKey("jwk", jwk, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["sign"]);
const signing = { key, kid: jwk.kid };
// OpenIddict 7 asks for draft-ietf-oauth-rfc7523bis's explicit type on client assertions.
const authentication = client.PrivateKeyJwt(signing, { [client.modifyAssertion]: (header) => { header.typ = "client-authentication+jwt"; } });
const config = await client.discovery(new URL(env.ISSUER), env.CLIENT_ID, undefined, authentication, { execute: [client.allowInsecureRequests] });

if (env.PHASE === "start") {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = await client.buildAuthorizationUrlWithJAR(config, {
    redirect_uri: env.REDIRECT_URI, scope: "openid email", state, max_age: "300",
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
    claims: JSON.stringify({ id_token: { email: { essential: true } } }),
  }, signing);
  console.log(JSON.stringify({ url: url.href, verifier, state, requestSupported: config.serverMetadata().request_parameter_supported }));
} else {
  const tokens = await client.authorizationCodeGrant(config, new URL(env.CALLBACK), { pkceCodeVerifier: env.VERIFIER, expectedState: env.STATE });
  console.log(JSON.stringify(tokens.claims()));
}
