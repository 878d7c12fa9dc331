// The console's moving parts: it reads the services' ops ports every pollMs,
// receives spans, runs toggles, and builds the page's model from all three.
import type { ConsoleConfig } from './config.ts';
import { consoleError } from './errors.ts';
import { ModelBuilder, type ConsoleModel } from './model.ts';
import { readService } from './service-reader.ts';
import { forgedCertificateToggle, paymentFaultsToggle, type Toggle, type ToggleState } from './toggles.ts';
import { TraceStore } from './trace-store.ts';

/** TRACES_SHOWN is how many of the kept traces the model carries: the latest across services… */
export const TRACES_SHOWN = 8;
/** DENIED_TRACES_SHOWN …and, kept apart so traffic does not push them out, the latest with a denied hop. */
export const DENIED_TRACES_SHOWN = 4;

/** ConsoleModelWithToggles is GET /api/model's body. */
export interface PageModel extends ConsoleModel {
  toggles: ToggleState[];
  /** mode is the orchestrator's identity mode ("files" or "spiffe"), or null when the console runs on its own. */
  mode: string | null;
}

/** ConsoleOptions add what only an orchestrator knows. */
export interface ConsoleOptions {
  /** toggles are the orchestrator's (expire a certificate, stop a SPIRE agent, …), after the built-in ones. */
  toggles?: readonly Toggle[];
  /** mode is the identity mode the orchestrator runs the shop in. */
  mode?: string;
}

/** ShopConsole polls the services and keeps what the page shows. */
export class ShopConsole {
  readonly config: Readonly<ConsoleConfig>;
  readonly traces: TraceStore;
  readonly #model = new ModelBuilder();
  readonly #toggles: Toggle[];
  readonly #last = new Map<string, { at: string; ok: boolean; message: string }>();
  readonly #mode: string | null;
  /** receiverUrl is where spans are POSTed, once listening (the port may have been picked free). */
  receiverUrl: string;
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;

  constructor(config: Readonly<ConsoleConfig>, options: ConsoleOptions = {}) {
    this.config = config;
    this.traces = new TraceStore(config.traceLimit);
    this.#mode = options.mode ?? null;
    this.receiverUrl = `http://${config.host}:${config.port}`;
    this.#toggles = [
      forgedCertificateToggle({ inventoryUrl: config.inventoryUrl, spiffeId: `spiffe://${config.trustDomain}/order` }),
      paymentFaultsToggle(config.paymentAdminUrl),
      ...(options.toggles ?? []),
    ];
  }

  /** poll reads every service once. */
  async poll(): Promise<void> {
    const readings = await Promise.all(this.config.services.map((t) => readService(t)));
    for (const r of readings) this.#model.record(r);
  }

  /** start polls now and every pollMs until stop(). */
  start(): void {
    const tick = (): void => {
      this.#polling = this.poll().finally(() => {
        if (this.#timer !== undefined) this.#timer = setTimeout(tick, this.config.pollMs);
      });
    };
    this.#timer = setTimeout(tick, 0);
  }

  /** stop ends polling (waits for a read under way). */
  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#polling;
  }

  /** model is GET /api/model's body. */
  model(): PageModel {
    const m = this.#model.build(
      this.config.services.map((s) => s.name),
      this.traces.shown(TRACES_SHOWN, DENIED_TRACES_SHOWN),
      this.config.pollMs,
      `spans POSTed to ${this.receiverUrl}/v1/traces (OTLP/HTTP JSON), the last ${this.config.traceLimit} traces kept`,
    );
    return {
      ...m,
      mode: this.#mode,
      toggles: this.#toggles.map((t) => ({
        name: t.name,
        label: t.label,
        description: t.description,
        inputs: t.inputs ?? [],
        available: t.available(),
        last: this.#last.get(t.name) ?? null,
      })),
    };
  }

  /** runToggle runs a toggle by name and records its outcome. */
  async runToggle(name: string, body: Record<string, unknown>): Promise<string> {
    const t = this.#toggles.find((x) => x.name === name);
    if (!t) throw consoleError('CONSOLE_TOGGLE_UNKNOWN', `no toggle named ${JSON.stringify(name.slice(0, 64))}`);
    const available = t.available();
    if (available !== true) throw consoleError('CONSOLE_TOGGLE_UNAVAILABLE', `${t.label}: ${available}`);
    try {
      const message = await t.run(body);
      this.#last.set(name, { at: new Date().toISOString(), ok: true, message });
      // Read the services now, so the page shows the effect at its next refresh.
      await this.poll();
      return message;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.#last.set(name, { at: new Date().toISOString(), ok: false, message });
      throw consoleError('CONSOLE_TOGGLE_FAILED', `${t.label} failed: ${message}`, { cause: err });
    }
  }
}
