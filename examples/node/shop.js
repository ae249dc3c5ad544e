#!/usr/bin/env node
// A small shop that takes payments through Sika, with nothing beyond Node.js's standard library.
//
//   GET  /buy?amount=2500.00&currency=NGN  creates a checkout, sends the customer to it (303)
//   POST /sika/notifications               Sika's signed notification: verified, then acted on
//   GET  /orders/<reference>               the order as the shop knows it (status read from Sika)
//
// Environment: SIKA_URL (https://…), SIKA_API_KEY, SIKA_NOTIFY_SECRET (whsec_…), SIKA_CA_FILE
// (only for a self-signed Sika, e.g. the demo's DIR/tls/cert.pem), SHOP_PORT (default 8000).
// Orders live in memory: a real shop keeps them in its database.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');

const SIKA_URL = process.env.SIKA_URL.replace(/\/$/, '');
const API_KEY = process.env.SIKA_API_KEY;
const NOTIFY_SECRET = process.env.SIKA_NOTIFY_SECRET;
const TOLERANCE_SECONDS = 300;
const ca = process.env.SIKA_CA_FILE ? fs.readFileSync(process.env.SIKA_CA_FILE) : undefined;

const orders = new Map(); // reference -> { status, notified: [event ids] }

// One call to Sika's API; resolves to { status, json }.
function sika(method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(SIKA_URL + path, {
      method, ca, timeout: 30000,
      headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
    }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        try { resolve({ status: res.statusCode, json: JSON.parse(text) }); } catch (e) { reject(e); }
      });
    });
    req.on('timeout', () => req.destroy(new Error('Sika did not answer')));
    req.on('error', reject);
    req.end(data);
  });
}

// Sika-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>.
function verify(header, body) {
  const parts = Object.fromEntries((header || '').split(',').map((p) => p.split('=', 2)).filter((p) => p.length === 2));
  const t = Number.parseInt(parts.t, 10);
  if (!Number.isSafeInteger(t) || Math.abs(Date.now() / 1000 - t) > TOLERANCE_SECONDS) return false;
  const expected = crypto.createHmac('sha256', NOTIFY_SECRET).update(`${t}.`).update(body).digest();
  const given = Buffer.from(parts.v1 || '', 'hex');
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}

function reply(res, status, body = {}, location) {
  const headers = { 'Content-Type': 'application/json' };
  if (location) headers.Location = location;
  res.writeHead(status, headers).end(JSON.stringify(body));
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://shop');
    if (req.method === 'GET' && url.pathname === '/buy') {
      const reference = `node-${crypto.randomBytes(8).toString('hex')}`;
      const { status, json } = await sika('POST', '/api/v1/checkouts', {
        reference,
        amount: url.searchParams.get('amount') || '2500.00',
        currency: url.searchParams.get('currency') || 'NGN',
        customer: { email: url.searchParams.get('email') || 'customer@example.com' },
      });
      if (status !== 200 && status !== 201) return reply(res, 502, { error: json });
      orders.set(reference, { status: 'pending', notified: [] });
      return reply(res, 303, { reference }, json.checkout_url);
    }
    if (req.method === 'GET' && url.pathname.startsWith('/orders/')) {
      const reference = decodeURIComponent(url.pathname.slice('/orders/'.length));
      const order = orders.get(reference);
      if (!order) return reply(res, 404);
      // Sika's word is the truth: read the status, never trust the redirect's query string.
      const { json } = await sika('GET', `/api/v1/checkouts/${encodeURIComponent(reference)}`);
      return reply(res, 200, { reference, status: json.status, notified: order.notified });
    }
    if (req.method === 'POST' && url.pathname === '/sika/notifications') {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const body = Buffer.concat(chunks);
      if (!verify(req.headers['sika-signature'], body)) return reply(res, 400, { error: 'bad signature' });
      const event = JSON.parse(body);
      const order = orders.get(event.reference);
      if (order && !order.notified.includes(event.id)) { // each event once
        order.notified.push(event.id);
        order.status = event.status; // e.g. ship the goods when "paid"
      }
      return reply(res, 200);
    }
    reply(res, 404);
  } catch (e) {
    reply(res, 500, { error: String(e.message || e) });
  }
});

const port = Number(process.env.SHOP_PORT || 8000);
server.listen(port, '127.0.0.1', () => console.log(`shop listening on http://127.0.0.1:${port}`));
