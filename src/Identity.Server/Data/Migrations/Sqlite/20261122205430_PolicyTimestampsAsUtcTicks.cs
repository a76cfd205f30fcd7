using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Identity.Server.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class PolicyTimestampsAsUtcTicks : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.UpdateData(
                table: "Policies",
                keyColumn: "Id",
                keyValue: "admins-all",
                columns: new[] { "CreatedAt", "UpdatedAt" },
                values: new object[] { 639309888000000000L, 639309888000000000L });

            migrationBuilder.UpdateData(
                table: "Policies",
                keyColumn: "Id",
                keyValue: "organization-members-read",
                columns: new[] { "CreatedAt", "UpdatedAt" },
                values: new object[] { 639309888000000000L, 639309888000000000L });

            migrationBuilder.UpdateData(
                table: "Policies",
                keyColumn: "Id",
                keyValue: "tenant-isolation",
                columns: new[] { "CreatedAt", "UpdatedAt" },
                values: new object[] { 639309888000000000L, 639309888000000000L });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.UpdateData(
                table: "Policies",
                keyColumn: "Id",
                keyValue: "admins-all",
                columns: new[] { "CreatedAt", "UpdatedAt" },
                values: new object[] { 1309306650624000000L, 1309306650624000000L });

            migrationBuilder.UpdateData(
                table: "Policies",
                keyColumn: "Id",
                keyValue: "organization-members-read",
                columns: new[] { "CreatedAt", "UpdatedAt" },
                values: new object[] { 1309306650624000000L, 1309306650624000000L });

            migrationBuilder.UpdateData(
                table: "Policies",
                keyColumn: "Id",
                keyValue: "tenant-isolation",
                columns: new[] { "CreatedAt", "UpdatedAt" },
                values: new object[] { 1309306650624000000L, 1309306650624000000L });
        }
    }
}
