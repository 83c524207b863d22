// The serving benchmarks' load generator is open-loop: it must hand every query to the frontend
// when its time comes, however many are unanswered. A server here holds every request until 400
// are in flight at once, then answers them all: a client that caps its connections below 400
// (the REST client's default is 256) never gets there, and its requests time out instead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LOAD_GENERATOR_CONNECTIONS, loadGeneratorClient } from '../../src/bench/serving-experiment.js';
import { V2RestClient } from '../../src/serve/rest-client.js';

const IN_FLIGHT = 400;

async function heldServer() {
  const held: ServerResponse[] = [];
  let peak = 0;
  const server = createServer((_req, res) => {
    held.push(res);
    peak = Math.max(peak, held.length);
    if (held.length >= IN_FLIGHT) for (const r of held.splice(0)) r.writeHead(200).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = () => {
    for (const r of held.splice(0)) r.writeHead(503).end();
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, close, peak: () => peak };
}

test(`the load generator's REST client keeps ${IN_FLIGHT} requests in flight at once (it never queues queries itself)`, async () => {
  assert.ok(LOAD_GENERATOR_CONNECTIONS >= IN_FLIGHT);
  const s = await heldServer();
  const client = loadGeneratorClient(s.address, 'rest');
  assert.ok(client instanceof V2RestClient);
  try {
    const answers = await Promise.all(Array.from({ length: IN_FLIGHT }, () => client.serverLive(20_000)));
    assert.equal(answers.filter(Boolean).length, IN_FLIGHT);
    assert.equal(s.peak(), IN_FLIGHT);
  } finally {
    client.close();
    await s.close();
  }
});
