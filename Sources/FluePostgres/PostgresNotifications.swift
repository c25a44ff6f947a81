import ServiceLifecycle

/// The cross-process wake-ups of a ``PostgresPersistence`` as a service: the `LISTEN` connection
/// and the `NOTIFY` announcer. At graceful shutdown the listener stops, then the announcer sends
/// what is queued and ends; the pool must still run, so a service group lists this after the
/// `PostgresClient`. (Cancellation stops both at once and may drop queued notifications.)
struct PostgresNotifications: Service {
    let persistence: PostgresPersistence

    func run() async {
        let announcer = persistence.announcer
        async let announcing: Void = announcer.run()
        await cancelWhenGracefulShutdown { await persistence.listen() }
        announcer.finish()
        await announcing
    }
}
