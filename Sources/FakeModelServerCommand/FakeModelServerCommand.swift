import ArgumentParser
@main struct FakeModelServerCommand: AsyncParsableCommand { func run() async throws {} }
