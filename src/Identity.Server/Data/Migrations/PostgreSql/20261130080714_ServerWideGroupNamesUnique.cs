using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Identity.Server.Data.Migrations.PostgreSql
{
    /// <inheritdoc />
    public partial class ServerWideGroupNamesUnique : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateIndex(
                name: "IX_Groups_NormalizedName",
                table: "Groups",
                column: "NormalizedName",
                unique: true,
                filter: "\"OrganizationId\" IS NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_Groups_NormalizedName",
                table: "Groups");
        }
    }
}
