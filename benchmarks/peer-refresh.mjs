// The peer (../shared/bench/oidc-provider) set up for refresh token rotation, which its own server.mjs (one
// client_credentials client) cannot do. Same provider, same keys file, same JWT access tokens (RS256, audience
// urn:bench:api), plus one confidential client with the refresh_token grant and rotation on every use, as ours.
// oidc-provider only issues a first refresh token after an interactive login; a benchmark cannot type one, so
// GET /bench/refresh-tokens?count=N (loopback, this benchmark only) creates the grant and the refresh tokens that such
// a login would have left in its store. Everything measured (the refresh grant) is the provider's own code.
// Run from the peer's folder (it imports the peer's oidc-provider). Env: PORT. One process: its store is in memory.
import { createServer } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const PORT = Number(process.env.PORT || 3000);
const ACCOUNT = 'bench-user';
const RESOURCE = 'urn:bench:api';
const KEYFILE = new URL('./keys.json', import.meta.url);

function keys() {  // server.mjs's keys when it ran first, else an RSA key of the same kind
  if (existsSync(KEYFILE)) return JSON.parse(readFileSync(KEYFILE));
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ks = { keys: [{ ...rsa, kid: 'rsa1', use: 'sig', alg: 'RS256' }] };
  writeFileSync(KEYFILE, JSON.stringify(ks));
  return ks;
}

const provider = new Provider(`http://127.0.0.1:${PORT}`, {
  jwks: keys(),
  clients: [{
    client_id: 'bench-app',
    client_secret: 'bench-app-secret-0123456789abcdef',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    scope: 'offline_access api:read',
  }],
  scopes: ['offline_access', 'api:read'],
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  rotateRefreshToken: true,
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async () => ({
        scope: 'api:read', audience: RESOURCE, accessTokenTTL: 3600, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});

async function refreshTokens(count) {
  const client = await provider.Client.find('bench-app');
  const tokens = [];
  for (let i = 0; i < count; i++) {
    const grant = new provider.Grant({ accountId: ACCOUNT, clientId: client.clientId });
    grant.addOIDCScope('offline_access');
    grant.addResourceScope(RESOURCE, 'api:read');
    const grantId = await grant.save();
    const token = new provider.RefreshToken({
      accountId: ACCOUNT, client, grantId, gty: 'authorization_code', scope: 'offline_access api:read',
      resource: RESOURCE, rotations: 0, authTime: Math.floor(Date.now() / 1000),
    });
    tokens.push(await token.save());
  }
  return tokens;
}

const app = provider.callback();
createServer(async (req, res) => {
  if (req.method === 'GET' && req.url.startsWith('/bench/refresh-tokens')) {
    const count = Number(new URL(req.url, 'http://x').searchParams.get('count') || 1);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(await refreshTokens(count)));
    return;
  }
  app(req, res);
}).listen(PORT, '127.0.0.1', () => console.log(`pid ${process.pid} oidc-provider (refresh) listening http://127.0.0.1:${PORT}`));
