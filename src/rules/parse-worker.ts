/**
 * The worker thread behind parseRuleTextOffThread: parses one text and posts the documents back as JSON
 * text (the main thread reads 1 MB of JSON in a few ms; a structured clone of the same objects took ~100 ms).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { parseRuleText } from './parse-rule-text.js';

parentPort!.postMessage(JSON.stringify(parseRuleText((workerData as { text: string }).text)));
