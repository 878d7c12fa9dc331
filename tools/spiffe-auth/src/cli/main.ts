#!/usr/bin/env node
// spiffe-auth: the certificate CLI built on @shop/auth (see
// tools/spiffe-auth/docs/cli.md). Node runs this TypeScript file directly by
// type stripping (Node >= 22.18), and @shop/auth from its sources.
import { processIo } from './command.ts';
import { runCli } from './run.ts';

process.exitCode = await runCli(process.argv.slice(2), processIo);
