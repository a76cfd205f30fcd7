using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

#pragma warning disable CA1814 // Prefer jagged arrays over multidimensional

namespace Identity.Server.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class Policies : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "Policies",
                columns: table => new
                {
                    Id = table.Column<string>(type: "TEXT", maxLength: 128, nullable: false),
                    Description = table.Column<string>(type: "TEXT", maxLength: 1024, nullable: true),
                    Text = table.Column<string>(type: "TEXT", maxLength: 16384, nullable: false),
                    Enabled = table.Column<bool>(type: "INTEGER", nullable: false),
                    CreatedAt = table.Column<long>(type: "INTEGER", nullable: false),
                    UpdatedAt = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_Policies", x => x.Id);
                });

            migrationBuilder.InsertData(
                table: "Policies",
                columns: new[] { "Id", "CreatedAt", "Description", "Enabled", "Text", "UpdatedAt" },
                values: new object[,]
                {
                    { "admins-all", 1309306650624000000L, "Server admins may do anything", true, "permit (principal in Role::\"admin\", action, resource);", 1309306650624000000L },
                    { "organization-members-read", 1309306650624000000L, "Members of an organization may read its resources", true, "permit (principal is User, action == Action::\"read\", resource)\nwhen { principal has organization && resource in principal.organization };", 1309306650624000000L },
                    { "tenant-isolation", 1309306650624000000L, "Nobody but a server admin acts on a resource of another organization", true, "forbid (principal is User, action, resource)\nwhen { resource has organization && !(principal has organization && principal.organization == resource.organization) }\nunless { principal in Role::\"admin\" };", 1309306650624000000L }
                });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "Policies");
        }
    }
}
