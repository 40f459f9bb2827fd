// A tiny JSON client for a Strata server, addressing a tenant by Host header
// (fetch cannot set Host, node:http can).
import http from 'node:http';

export function client({ url, host }) {
  const base = new URL(url);
  let token = null;
  let credentials = null;
  // An access token lasts 15 minutes: on 401 sign in again and resend once.
  async function request(method, path, body) {
    const res = await send(method, path, body);
    if (res.status === 401 && credentials && path !== '/api/v1/auth/token') {
      await login(...credentials);
      return send(method, path, body);
    }
    return res;
  }
  async function login(email, password) {
    const res = await send('POST', '/api/v1/auth/token', { email, password });
    if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
    token = res.body.access_token;
    credentials = [email, password];
  }
  function send(method, path, body) {
    const payload = body === undefined ? null : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          hostname: base.hostname,
          port: base.port,
          method,
          path,
          headers: {
            Host: host,
            'content-type': 'application/json',
            ...(payload ? { 'content-length': payload.length } : {}),
            ...(token ? { authorization: `Bearer ${token}` } : {}),
          },
        },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json = null;
            try { json = text ? JSON.parse(text) : null; } catch { json = text; }
            resolve({ status: res.statusCode, body: json });
          });
        },
      );
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });
  }
  return { request, login };
}

export function config() {
  const need = (k) => {
    const v = process.env[k];
    if (!v) throw new Error(`${k} is not set`);
    return v;
  };
  return {
    url: need('STRATA_URL'),
    host: need('STRATA_HOST'),
    email: need('STRATA_EMAIL'),
    password: need('STRATA_PASSWORD'),
  };
}
