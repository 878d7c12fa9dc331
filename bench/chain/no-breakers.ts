// `node --import bench/chain/no-breakers.ts`: resolves `opossum` to a
// pass-through, so the order service runs its code unchanged but with every
// circuit breaker reduced to a plain call. A bench-only stand-in until the
// order service has a switch of its own (BREAKERS=off).
import { registerHooks } from 'node:module';

const passThrough = new URL('./pass-through-breaker.ts', import.meta.url).href;

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier === 'opossum') return { url: passThrough, shortCircuit: true };
    return nextResolve(specifier, context);
  },
});
