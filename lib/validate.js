"use strict"
// `pusher`'s argument checks, thrown synchronously with its exact messages. They stay
// in JS because the messages are built from `String(value)` of whatever was passed.

const INVALID_CHANNEL_CHAR = /[^A-Za-z0-9_\-=@,.;]/
const SOCKET_ID = /^\d+\.\d+$/

function channelName(name) {
  if (typeof name !== "string" || name === "" || INVALID_CHANNEL_CHAR.test(name)) {
    throw new Error("Invalid channel name: '" + name + "'")
  }
  if (name.length > 200) {
    throw new Error("Channel name too long: '" + name + "'")
  }
}

function socketId(id) {
  if (typeof id !== "string" || id === "" || !SOCKET_ID.test(id)) {
    throw new Error("Invalid socket id: '" + id + "'")
  }
}

function userId(id) {
  if (typeof id !== "string" || id === "") {
    throw new Error("Invalid user id: '" + id + "'")
  }
}

function userData(data) {
  if (data == null || typeof data !== "object") {
    throw new Error("Invalid user data: '" + data + "'")
  }
  userId(data.id)
}

function eventName(event) {
  if (event.length > 200) {
    throw new Error("Too long event name: '" + event + "'")
  }
}

// Named `channel` like upstream's: V8 quotes it in "channel.startsWith is not a function".
const isEncryptedChannel = (channel) => channel.startsWith("private-encrypted-")

// `channelName`, not `channel`: the web build's bundler would rename the parameter below.
module.exports = { channel: channelName, socketId, userId, userData, eventName, isEncryptedChannel }
