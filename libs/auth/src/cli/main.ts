#!/usr/bin/env node
// spiffe-auth: the CLI of @shop/auth (see libs/auth/docs/cli.md). Node runs
// this TypeScript file directly by type stripping (Node >= 22.18).
import { processIo } from './command.ts';
import { runCli } from './run.ts';

process.exitCode = await runCli(process.argv.slice(2), processIo);
