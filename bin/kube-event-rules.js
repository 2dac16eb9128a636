#!/usr/bin/env node
// The CLI runs the compiled service (npm run build, or `npm install`, which builds through `prepare`).
import '../dist/main.js';
