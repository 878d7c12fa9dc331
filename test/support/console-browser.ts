// Debian's chromium driven by playwright-core for the console's browser
// tests: never a downloaded browser, headless, a fresh user-data folder per
// test, screenshots under test-results/console/ (gitignored).
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { ensureChromium } from '../../scripts/console/get-chromium.ts';
import { ROOT } from '../../scripts/shop.ts';

/** SCREENSHOT_DIR is where the browser tests save what the page looked like. */
export const SCREENSHOT_DIR = join(ROOT, 'test-results', 'console');

/** CHROMIUM_ARGS are the flags the issue asks for: no sandbox (root in CI), no GPU, no network of its own. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];

/** ConsoleBrowser is one headless chromium with its own user-data folder. */
export interface ConsoleBrowser {
  page: Page;
  context: BrowserContext;
  /** screenshot saves the full page (or only `part`) as test-results/console/<name>.png and returns its path. */
  screenshot(name: string, part?: Locator): Promise<string>;
  close(): Promise<void>;
}

/** openConsole starts chromium (installing Debian's package first if missing) and opens `url`. */
export async function openConsole(url: string): Promise<ConsoleBrowser> {
  const executablePath = await ensureChromium();
  const userDataDir = await mkdtemp(join(tmpdir(), 'console-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1360, height: 1000 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(url);
  return {
    page,
    context,
    screenshot: async (name, part) => {
      await mkdir(SCREENSHOT_DIR, { recursive: true });
      const path = join(SCREENSHOT_DIR, `${name}.png`);
      if (part) await part.screenshot({ path });
      else await page.screenshot({ path, fullPage: true });
      return path;
    },
    close: async () => {
      await context.close();
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}

/** textOf waits until `locator` is visible and returns its text. */
export async function textOf(locator: Locator, timeout = 15_000): Promise<string> {
  await locator.waitFor({ state: 'visible', timeout });
  return (await locator.textContent()) ?? '';
}

/** seconds reads a countdown as the page shows it ("29d 23:59:58", "00:00:27", "expired"). */
export function seconds(countdown: string): number {
  if (countdown.trim() === 'expired') return 0;
  const m = /^(?:(\d+)d )?(\d\d):(\d\d):(\d\d)$/.exec(countdown.trim());
  if (!m) throw new Error(`not a countdown: ${JSON.stringify(countdown)}`);
  return Number(m[1] ?? 0) * 86_400 + Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4]);
}

/** tabTo presses Tab until the focused element is `target` (as a keyboard user would reach it), at most `max` times. */
export async function tabTo(page: Page, target: Locator, max = 60): Promise<number> {
  // Without the DOM lib in tsconfig, the page function types its element by hand.
  type Focusable = { ownerDocument: { activeElement: unknown } };
  for (let i = 1; i <= max; i++) {
    await page.keyboard.press('Tab');
    if (await target.evaluate((el: Focusable) => el === el.ownerDocument.activeElement)) return i;
  }
  throw new Error(`tabTo: ${max} presses of Tab never focused the target`);
}
