// Types for the ES module entry (index.mjs): the CommonJS typings, re-exported.
//   import Pusher, { RequestError, WebHookError, Token } from "pusher-native"
// `Pusher.Options`, `Pusher.Response`, … are reachable through the default export, as
// with `import Pusher = require("pusher-native")`; the common ones are also named here.
import Pusher from "./index.js"

export default Pusher

export import forURL = Pusher.forURL
export import forCluster = Pusher.forCluster
export import Token = Pusher.Token
export import RequestError = Pusher.RequestError
export import WebHookError = Pusher.WebHookError

export type Options = Pusher.Options
export type BaseOptions = Pusher.BaseOptions
export type ClusterOptions = Pusher.ClusterOptions
export type HostOptions = Pusher.HostOptions
export type TriggerParams = Pusher.TriggerParams
export type BatchEvent = Pusher.BatchEvent
export type Params = Pusher.Params
export type GetOptions = Pusher.GetOptions
export type PostOptions = Pusher.PostOptions
export type SignedQueryStringOptions = Pusher.SignedQueryStringOptions
export type ChannelAuthResponse = Pusher.ChannelAuthResponse
export type UserAuthResponse = Pusher.UserAuthResponse
export type PresenceChannelData = Pusher.PresenceChannelData
export type UserChannelData = Pusher.UserChannelData
export type WebHook = Pusher.WebHook
export type WebHookRequest = Pusher.WebHookRequest
export type WebHookData = Pusher.WebHookData
export type Event = Pusher.Event
export type SigningToken = Pusher.SigningToken
export type Response = Pusher.Response
export type Headers = Pusher.Headers
export type RequestErrorCode = Pusher.RequestErrorCode
export type RequestErrorCause = Pusher.RequestErrorCause
export type FetchError = Pusher.FetchError
export type AbortError = Pusher.AbortError
export type RetryOptions = Pusher.RetryOptions
export type LimitsOptions = Pusher.LimitsOptions
export type VerifyWebhookRequest = Pusher.VerifyWebhookRequest
export type VerifyWebhookOptions = Pusher.VerifyWebhookOptions
export type VerifyWebhookResult = Pusher.VerifyWebhookResult
export type VerifyWebhookReason = Pusher.VerifyWebhookReason
export type RequestDiagnosticsMessage = Pusher.RequestDiagnosticsMessage
export type ChannelAttribute = Pusher.ChannelAttribute
export type ChannelInfo = Pusher.ChannelInfo
export type ChannelsQuery = Pusher.ChannelsQuery
export type ChannelQuery = Pusher.ChannelQuery
export type ChannelCounts = Pusher.ChannelCounts
export type ChannelsResult = Pusher.ChannelsResult
export type ChannelResult = Pusher.ChannelResult
export type PresenceUser = Pusher.PresenceUser
export type UsersResult = Pusher.UsersResult
