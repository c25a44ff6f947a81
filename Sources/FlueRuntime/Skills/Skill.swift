import Foundation
import Yams

/// A reusable piece of know-how the model loads when it needs it: a name and a one-line
/// description always in view (the catalog), the instructions only once the model calls
/// `activate_skill` (progressive disclosure), or when code runs it with ``Session/skill(_:arguments:result:options:)``.
///
/// Skills come from code (``Agent/skills``) and from the sandbox: every
/// `.agents/skills/<dir>/SKILL.md` below the working directory, a Markdown file whose YAML
/// frontmatter gives `name` and `description`:
///
/// ```markdown
/// ---
/// name: release-notes
/// description: Write release notes from a list of merged changes.
/// ---
/// Group the changes by area, one line each, newest first. …
/// ```
public struct Skill: Sendable, Hashable {
    /// A ``DefinitionName``.
    public var name: String
    /// One line: when to use it.
    public var description: String
    /// What the model reads when it activates the skill.
    public var instructions: String

    /// Throws `invalid_definition` for a bad name or an empty description.
    public init(name: String, description: String, instructions: String) throws {
        try DefinitionName.check(name, of: "skill")
        guard !description.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw FlueError(.invalidDefinition, "skill \(name) needs a description")
        }
        self.name = name
        self.description = description.trimmingCharacters(in: .whitespacesAndNewlines)
        self.instructions = instructions.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Parses a `SKILL.md`: `---`, YAML with `name` and `description`, `---`, then the
    /// instructions. Throws `invalid_definition` naming `source` when the frontmatter is missing,
    /// is not YAML, or lacks a field.
    public init(markdown: String, source: String) throws {
        struct Frontmatter: Decodable {
            var name: String?
            var description: String?
        }
        var lines = markdown.splitLines()
        guard lines.first?.trimmingCharacters(in: .whitespaces) == "---",
            let end = lines.dropFirst().firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "---" })
        else {
            throw FlueError(.invalidDefinition, "\(source): a SKILL.md starts with --- frontmatter --- (name, description)")
        }
        let yaml = lines[1..<end].joined(separator: "\n")
        let frontmatter: Frontmatter
        do {
            frontmatter = try YAMLDecoder().decode(Frontmatter.self, from: yaml)
        } catch {
            throw FlueError(.invalidDefinition, "\(source): the frontmatter is not valid YAML: \(error)")
        }
        guard let name = frontmatter.name, let description = frontmatter.description else {
            throw FlueError(.invalidDefinition, "\(source): the frontmatter needs name and description")
        }
        lines.removeSubrange(0...end)
        try self.init(name: name, description: description, instructions: lines.joined(separator: "\n"))
    }

    /// The skills in `sandbox`: every `.agents/skills/*/SKILL.md` below its working directory,
    /// sorted by name, with the files that could not be read as skills.
    static func discover(in sandbox: any Sandbox) async throws -> (skills: [Skill], problems: [String]) {
        let root = sandbox.workingDirectory + "/.agents/skills"
        guard try await sandbox.stat(root)?.isDirectory == true else { return ([], []) }
        var skills: [Skill] = []
        var problems: [String] = []
        for entry in try await sandbox.list(root) where entry.isDirectory {
            let path = root + "/" + entry.name + "/SKILL.md"
            guard try await sandbox.stat(path)?.isDirectory == false else { continue }
            do {
                skills.append(try Skill(markdown: try await sandbox.readText(path), source: ".agents/skills/\(entry.name)/SKILL.md"))
            } catch let error as FlueError {
                problems.append(error.message)
            }
        }
        return (skills.sorted { $0.name < $1.name }, problems)
    }
}

/// The skills one operation sees: the agent's own first, then the sandbox's that do not reuse a
/// name; and the catalog and `activate_skill` tool built from them.
struct SkillCatalog: Sendable {
    var skills: [Skill]

    static func load(agent: Agent, sandbox: (any Sandbox)?, events: EventEmitter, scope: EventCorrelation) async throws
        -> SkillCatalog
    {
        var skills = agent.skills
        if let sandbox {
            let (found, problems) = try await Skill.discover(in: sandbox)
            for problem in problems { events.emit(.log(.init(level: .warn, message: "skill skipped: \(problem)")), scope) }
            let taken = Set(skills.map(\.name))
            skills += found.filter { !taken.contains($0.name) }
        }
        return SkillCatalog(skills: skills)
    }

    func skill(named name: String) -> Skill? { skills.first { $0.name == name } }

    /// The system prompt section listing the skills ("" when there are none).
    var promptSection: String {
        guard !skills.isEmpty else { return "" }
        return "\n\n# Skills\n\nA skill holds the instructions for one kind of task. Before doing such a task, call "
            + "activate_skill with its name and follow what it returns.\n\n"
            + skills.map { "- \($0.name): \($0.description)" }.joined(separator: "\n")
    }

    /// `activate_skill`, offered when there are skills.
    var tool: LoopTool? {
        guard !skills.isEmpty else { return nil }
        let spec = ToolSpec(
            name: "activate_skill",
            description: "Load the instructions of a skill listed under Skills in your instructions.",
            parameters: JSONSchema([
                "type": "object",
                "properties": ["name": ["type": "string", "enum": .array(skills.map { .string($0.name) })]],
                "required": ["name"],
                "additionalProperties": false,
            ]))
        let catalog = self
        return LoopTool(spec: spec) { arguments, _ in
            guard let name = arguments["name"]?.stringValue, let skill = catalog.skill(named: name) else {
                let known = catalog.skills.map(\.name).joined(separator: ", ")
                return ToolOutcome(content: "no skill named \(arguments["name"]?.stringValue ?? "(none)"); skills: \(known)", isError: true)
            }
            return ToolOutcome(content: "# Skill: \(skill.name)\n\n\(skill.instructions)", isError: false)
        }
    }
}
