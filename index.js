"use strict"
// pusher-native: a drop-in replacement for the `pusher` package.
//   const Pusher = require("pusher-native")
module.exports = require("./lib/pusher")
