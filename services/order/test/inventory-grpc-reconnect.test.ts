// Regression: on Kubernetes, an order pod that came up before inventory could
// serve stayed without inventory (its breaker open) for over a minute after
// inventory was Ready. grpc-js backs off reconnects up to 120 s by default
// (1 s × 1.6ⁿ, ±20 % jitter), so after half a minute of refused connections
// the next attempt can be 10–40 s away. Order's inventory channel caps that
// wait at 5 s. This test watches the connection attempts themselves.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { inventoryServiceDefinition } from '@shop/contracts';
import { createInventoryGrpcClientAdapter } from '../src/clients/inventory-grpc.ts';

const WATCH_MS = 30_000;
// 5 s cap, +20 % jitter, plus room for a loaded machine.
const MAX_GAP_MS = 7_500;

describe('regression: order reconnects to inventory within seconds, however long inventory was down', () => {
  it('tries again at least every 7.5 s while inventory refuses, then gets an answer once it serves', async (t) => {
    // Inventory's port accepts and drops every connection: each is a failed attempt, timestamped.
    const attempts: number[] = [];
    const refuser = createServer((s) => {
      attempts.push(Date.now());
      s.destroy();
    });
    refuser.listen(0, '127.0.0.1');
    await once(refuser, 'listening');
    const port = (refuser.address() as AddressInfo).port;
    const client = createInventoryGrpcClientAdapter(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), 300);
    const server = new grpc.Server();
    t.after(async () => {
      await client.close();
      refuser.close();
      server.forceShutdown();
    });

    // Orders keep coming while inventory is down: every call fails.
    const started = Date.now();
    let failures = 0;
    while (Date.now() - started < WATCH_MS) {
      await client.listProducts().then(
        () => assert.fail('inventory answered while it was refusing connections'),
        () => failures++,
      );
      await new Promise((r) => setTimeout(r, 250));
    }
    // The wait since the last attempt counts too: a long backoff may not have ended in the window.
    const gaps = [...attempts.slice(1), Date.now()].map((a, i) => a - (attempts[i] as number));
    await new Promise<void>((resolve) => {
      refuser.close(() => {
        resolve();
      });
    });
    assert.ok(attempts.length >= 5, `only ${attempts.length} connection attempts in ${WATCH_MS} ms`);
    assert.ok(failures > 10, `${failures} failed calls`);
    assert.ok(
      Math.max(...gaps) <= MAX_GAP_MS,
      `gaps between connection attempts (ms): ${gaps.join(', ')}; the longest must be at most ${MAX_GAP_MS}`,
    );

    // Positive control: inventory now serves on the same port, and the next attempt reaches it.
    server.addService(inventoryServiceDefinition(), {
      listProducts: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
        cb(null, { products: [{ product_id: 'sku-1', name: 'One', price_cents: 100, currency: 'EUR', on_hand: 1 }] });
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
        if (err) reject(err);
        else resolve();
      });
    });
    const up = Date.now();
    let products: unknown[] | undefined;
    while (products === undefined && Date.now() - up < MAX_GAP_MS + 2_000) {
      products = await client.listProducts().catch(() => undefined);
      if (products === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(products, `no answer within ${MAX_GAP_MS + 2_000} ms of inventory serving`);
    assert.equal(products.length, 1);
  });
});
