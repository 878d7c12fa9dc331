import { readFileSync } from 'node:fs';
import { PRODUCT_ID_PATTERN } from '@shop/contracts';
import { ConfigError } from '@shop/service-kit';

/** SeedProduct is one catalogue entry as seeded into an empty store (and as SEED_FILE lists them). */
export interface SeedProduct {
  product_id: string;
  name: string;
  price_cents: number;
  /** currency is an ISO 4217 code, e.g. "EUR". */
  currency: string;
  /** on_hand is the stock to start with. */
  on_hand: number;
}

/** DEFAULT_CATALOGUE is seeded on first start when SEED_FILE is not set. */
export const DEFAULT_CATALOGUE: readonly SeedProduct[] = Object.freeze([
  { product_id: 'sku-espresso', name: 'Espresso beans, 1 kg', price_cents: 2490, currency: 'EUR', on_hand: 100 },
  { product_id: 'sku-grinder', name: 'Hand grinder', price_cents: 8900, currency: 'EUR', on_hand: 30 },
  { product_id: 'sku-kettle', name: 'Gooseneck kettle', price_cents: 5900, currency: 'EUR', on_hand: 40 },
  { product_id: 'sku-dripper', name: 'Ceramic dripper', price_cents: 2200, currency: 'EUR', on_hand: 80 },
  { product_id: 'sku-filters', name: 'Paper filters, 100 pcs', price_cents: 590, currency: 'EUR', on_hand: 90 },
  { product_id: 'sku-scale', name: 'Brewing scale', price_cents: 4500, currency: 'EUR', on_hand: 25 },
  { product_id: 'sku-mug', name: 'Stoneware mug', price_cents: 1400, currency: 'EUR', on_hand: 60 },
  { product_id: 'sku-limited', name: 'Limited edition roast, 250 g', price_cents: 1990, currency: 'EUR', on_hand: 50 },
]);

const productIdRe = new RegExp(PRODUCT_ID_PATTERN);

/**
 * loadSeedFile reads a JSON array of SeedProduct from `file`, or throws a
 * ConfigError naming SEED_FILE, the entry and the field at fault.
 */
export function loadSeedFile(file: string): SeedProduct[] {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError('SEED_FILE', `must be a readable JSON file (${file}): ${(err as Error).message}`);
  }
  if (!Array.isArray(data) || data.length === 0) {
    throw new ConfigError('SEED_FILE', `must hold a non-empty JSON array of products (${file})`);
  }
  const seen = new Set<string>();
  return data.map((entry: unknown, i) => {
    const problem = (what: string): ConfigError => new ConfigError('SEED_FILE', `entry ${i} of ${file}: ${what}`);
    if (typeof entry !== 'object' || entry === null) throw problem('must be an object');
    const p = entry as Record<string, unknown>;
    if (typeof p.product_id !== 'string' || !productIdRe.test(p.product_id)) {
      throw problem(`product_id must match ${PRODUCT_ID_PATTERN}`);
    }
    if (seen.has(p.product_id)) throw problem(`product_id ${p.product_id} appears twice`);
    seen.add(p.product_id);
    if (typeof p.name !== 'string' || p.name.trim() === '') throw problem('name must be a non-empty string');
    if (!Number.isSafeInteger(p.price_cents) || (p.price_cents as number) < 0) {
      throw problem('price_cents must be a non-negative integer');
    }
    if (typeof p.currency !== 'string' || !/^[A-Z]{3}$/.test(p.currency)) {
      throw problem('currency must be an ISO 4217 code such as "EUR"');
    }
    if (!Number.isSafeInteger(p.on_hand) || (p.on_hand as number) < 0)
      throw problem('on_hand must be a non-negative integer');
    return {
      product_id: p.product_id,
      name: p.name,
      price_cents: p.price_cents as number,
      currency: p.currency,
      on_hand: p.on_hand as number,
    };
  });
}
