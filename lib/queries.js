"use strict"
// Typed application-state queries (beyond upstream): `channels()`, `channel()` and
// `users()`. Each checks its arguments synchronously, then goes through `this.get`, so
// the request is the one `get()` sends for the same path and params (and a stubbed
// `get` sees it), and resolves with what `response.json()` gives.

const validate = require("./validate")
const { invalidQuery } = require("./options")

const ATTRIBUTES = ["user_count", "subscription_count"]
const ALLOWED = ATTRIBUTES.join(", ")
const PRESENCE = "presence-"
const INVALID_CHANNEL_CHAR = /[^A-Za-z0-9_\-=@,.;]/

// Never throws while building a message (a Symbol or a hostile toString would).
function shown(value) {
  try {
    return typeof value === "symbol" ? value.toString() : String(value)
  } catch (e) {
    return Object.prototype.toString.call(value)
  }
}

function optionsOf(options, allowed) {
  if (options === undefined || options === null) return {}
  if (typeof options !== "object" || Array.isArray(options)) {
    throw invalidQuery(`Invalid options: '${shown(options)}' (expected an object with ${allowed.join(", ")})`)
  }
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) throw invalidQuery(`Unknown option '${key}' (allowed: ${allowed.join(", ")})`)
  }
  return options
}

/** `info` as an array or a comma-separated string -> the API's comma list, or undefined. */
function infoOf(info) {
  if (info === undefined || info === null) return undefined
  let items
  if (typeof info === "string") items = info.split(",")
  else if (Array.isArray(info)) items = info
  else throw invalidQuery(`Invalid info: '${shown(info)}' (expected an array or a comma-separated string of ${ALLOWED})`)
  const list = []
  for (const item of items) {
    const name = typeof item === "string" ? item.trim() : item
    // Empty entries ("", or "user_count,") ask for nothing.
    if (name === "" && typeof info === "string") continue
    if (!ATTRIBUTES.includes(name)) throw invalidQuery(`Invalid info attribute: '${shown(item)}' (allowed: ${ALLOWED})`)
    if (!list.includes(name)) list.push(name)
  }
  return list.length === 0 ? undefined : list.join(",")
}

function prefixOf(prefix) {
  if (prefix === undefined || prefix === null) return undefined
  if (typeof prefix !== "string" || prefix === "" || prefix.length > 200 || INVALID_CHANNEL_CHAR.test(prefix)) {
    throw invalidQuery(`Invalid channel prefix: '${shown(prefix)}'`)
  }
  return prefix
}

/** `pusher`'s channel-name check and message, with this module's code. */
function checkChannel(name) {
  try {
    validate.channel(name)
  } catch (e) {
    throw invalidQuery(e.message)
  }
}

const wantsUserCount = (info) => info !== undefined && info.split(",").includes("user_count")
const json = (response) => response.json()

/** `GET /channels`: `{ channels: { [name]: { user_count?, subscription_count? } } }`. */
function channels(options) {
  const { filterByPrefix, info } = optionsOf(options, ["filterByPrefix", "info"])
  const prefix = prefixOf(filterByPrefix)
  const list = infoOf(info)
  if (wantsUserCount(list) && !(prefix !== undefined && prefix.startsWith(PRESENCE))) {
    throw invalidQuery(
      `user_count needs filterByPrefix to start with '${PRESENCE}' (the API answers 400 when the query is not limited to presence channels)`
    )
  }
  const params = {}
  if (prefix !== undefined) params.filter_by_prefix = prefix
  if (list !== undefined) params.info = list
  return this.get(requestFor("/channels", params)).then(json)
}

/** `GET /channels/<name>`: `{ occupied, user_count?, subscription_count? }`. */
function channel(name, options) {
  checkChannel(name)
  const { info } = optionsOf(options, ["info"])
  const list = infoOf(info)
  if (wantsUserCount(list) && !name.startsWith(PRESENCE)) {
    throw invalidQuery(`user_count is only available for presence channels, not '${name}' (the API answers 400)`)
  }
  return this.get(requestFor("/channels/" + name, list === undefined ? {} : { info: list })).then(json)
}

/** `GET /channels/<name>/users`: `{ users: [{ id }] }`, presence channels only. */
function users(name) {
  checkChannel(name)
  if (!name.startsWith(PRESENCE)) {
    throw invalidQuery(`users() needs a presence channel, not '${name}' (the API answers 400 for others)`)
  }
  return this.get({ path: "/channels/" + name + "/users" }).then(json)
}

// No `params` key when there are none: what a hand-written `get({ path })` passes.
const requestFor = (path, params) => (Object.keys(params).length === 0 ? { path } : { path, params })

module.exports = { channels, channel, users }
