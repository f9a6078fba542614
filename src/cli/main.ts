#!/usr/bin/env node
// The ovlfs command's entry point (the package's bin): everything it does is in commands.ts.
const { main } = await import('./commands.js');
process.exitCode = await main(process.argv.slice(1));
