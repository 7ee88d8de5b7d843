'use strict'

// Writes a run's results: results/<date>-<node version>.json (everything, raw rounds
// included), results/latest.md and results/latest.svg. Also usable on its own to
// re-render the Markdown and SVG of a saved run: node report.js results/<file>.json

const fs = require('node:fs')
const path = require('node:path')
const { summarize } = require('./report/summarize')
const { markdown } = require('./report/markdown')
const { svg } = require('./report/svg')

/** results/<YYYY-MM-DD>-<node version>[-quick][-2...].json, never overwriting a run. */
function jsonPath(dir, meta) {
  const stem = `${meta.date.slice(0, 10)}-node-${meta.node}${meta.options.quick ? '-quick' : ''}`
  let file = path.join(dir, `${stem}.json`)
  for (let i = 2; fs.existsSync(file); i++) file = path.join(dir, `${stem}-${i}.json`)
  return file
}

function render(dir, results) {
  const written = []
  const write = (name, text) => {
    const file = path.join(dir, name)
    fs.writeFileSync(file, text)
    written.push(file)
  }
  write('latest.md', markdown(results))
  write('latest.svg', svg(results))
  return written
}

/** Summarizes `raw`, writes all three files; returns { results, written }. */
function writeReports(dir, meta, raw) {
  fs.mkdirSync(dir, { recursive: true })
  const results = { meta, summary: summarize(raw, meta.stores), raw }
  const file = jsonPath(dir, meta)
  fs.writeFileSync(file, `${JSON.stringify(results, null, 1)}\n`)
  return { results, written: [file, ...render(dir, results)] }
}

if (require.main === module) {
  const file = process.argv[2]
  if (!file) {
    console.error('usage: node report.js results/<run>.json')
    process.exit(2)
  }
  const results = JSON.parse(fs.readFileSync(file, 'utf8'))
  console.log(render(path.dirname(path.resolve(file)), results).join('\n'))
}

module.exports = { writeReports, render }
